// What an upload costs the server in resident memory: the peak RSS rise while a body arrives and
// the rise left after it, for search clips (1 MB, 10 MB) and a track upload (19 MB). The server
// runs in this process on a throwaway data dir; the client streams each body from one reused
// 64 KB buffer, so that the figures are the server's. The bodies are not audio: they are refused
// after they have been received, which is the part measured.
// `npm run build && node --expose-gc dist/bench/upload-memory.js [--runs 5]`
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/base/config.js';
import { setLogLevel } from '../src/base/log.js';
import { startServer } from '../src/serve.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
setLogLevel('silent');

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-bench-upload-'));
const server = await startServer(loadConfig({}, { dataDir, port: 0, vibeModel: 'off', matchThreads: 1, apiKey: undefined }));
const BOUNDARY = 'bench-upload-boundary';
const chunk = Buffer.alloc(64 * 1024, 0x5a);

/** Streams a multipart body with one file part of `bytes` bytes; resolves with the status. */
function upload(route: string, field: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${route}`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${field}"; filename="bench.bin"\r\n\r\n`);
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end(`\r\n--${BOUNDARY}--\r\n`);
    };
    pump();
  });
}

const MB = 2 ** 20;
const mb = (b: number) => (b / MB).toFixed(1);
console.log(`upload memory: ${runs} uploads of each size, one at a time; node ${process.version}, ${os.availableParallelism()} cores`);
const sizes = [
  ['/api/v1/search', 'audio', 1 * MB],
  ['/api/v1/search', 'audio', 10 * MB - 1024],
  ['/api/v1/tracks', 'file', 19 * MB],
] as const;
// Warm-up: code paths, buffers and the embedded catalog's start-up memory settled.
for (const [route, field, bytes] of sizes) await upload(route, field, bytes);
await new Promise((r) => setTimeout(r, 1000));
console.log('\n| upload | status | peak RSS rise MB (median) | peak RSS rise MB (max) | RSS rise after, gc MB |');
console.log('|---|---|---|---|---|');
for (const [route, field, bytes] of sizes) {
  gc();
  const base = process.memoryUsage().rss;
  const peaks: number[] = [];
  let status = 0;
  for (let r = 0; r < runs; r++) {
    gc();
    const start = process.memoryUsage().rss;
    let peak = start;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
    status = await upload(route, field, bytes);
    clearInterval(sample);
    peaks.push(Math.max(peak, process.memoryUsage().rss) - start);
  }
  gc();
  const left = process.memoryUsage().rss - base;
  console.log(`| ${mb(bytes)} MB to ${route} | ${status} | ${mb(median(peaks))} | ${mb(Math.max(...peaks))} | ${mb(left)} |`);
}
await server.close();
await rm(dataDir, { recursive: true, force: true });
