// Live listening against hostile and unlucky clients: text that ends up in a close reason, a
// connection that never starts, a trickle that keeps the idle timer quiet, many sockets from one
// address, and a server whose event loop stalls while honest clients stream.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/serve.js';
import { CLIP_DIR, CONDITIONS, makeClip, type CorpusTrack } from '../tools/corpus.js';
import { listen, results, type ListenResult } from '../tools/listen-client.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';

const run = promisify(execFile);
let server: RunningServer;
let catalog: CorpusTrack[];
let audio: Buffer;
const wsUrl = () => `${server.url.replace('http', 'ws')}/api/v1/listen`;

before(async () => {
  ({ catalog } = await smallCorpusSplit());
  server = await startServer(await tempDataDir('server', { port: 0, trustProxy: true }), {
    startSeconds: 1,
    rateWindowSeconds: 4,
    maxSessionsPerAddress: 3,
  });
  assert.equal((await server.engine.ingest(catalog.slice(0, 2).map((t) => t.file))).created, 2);
  const c = CONDITIONS.find((x) => x.name === 'clean')!;
  const wav = await makeClip(catalog[1]!.file, path.join(CLIP_DIR, `${catalog[1]!.name}-40-8-clean.wav`), 40, 8, c);
  const webm = wav.replace(/\.wav$/, '.live.webm');
  if (!existsSync(webm)) await run('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-c:a', 'libopus', '-b:a', '32k', webm]);
  audio = await readFile(webm);
});
after(async () => {
  await server?.close();
});

interface Closed {
  code: number;
  reason: string;
  bytes: number;
  messages: { type: string; code?: string; message?: string }[];
}
const closeOf = (act: (ws: WebSocket) => void, headers: Record<string, string> = {}) =>
  new Promise<Closed>((resolve, reject) => {
    const ws = new WebSocket(wsUrl(), { headers });
    const messages: Closed['messages'] = [];
    ws.on('open', () => act(ws));
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), bytes: reason.length, messages }));
    ws.on('error', reject);
  });
const start = (extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'start', format: 'webm-opus', ...extra });
const settled = async () => {
  for (let i = 0; i < 50 && server.listen.stats().sessions; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.listen.stats().sessions, 0);
};
const rightFinal = (r: ListenResult) => results(r).find((x) => x.status === 'final')?.matches[0]?.track.file_name === catalog[1]!.name;

test('client text in a close reason is cut between characters, and the server lives on', async () => {
  const cases: [string, string, number][] = [
    ['euro signs in the type', JSON.stringify({ type: `x${'€'.repeat(40)}` }), 1008],
    ['é in the format', start({ format: 'é'.repeat(60) }), 1003],
    ['a long multibyte key', JSON.stringify({ type: 'start', format: 'webm-opus', max_results: { ['ü'.repeat(80)]: 1 } }), 1008],
    ['four-byte characters', JSON.stringify({ type: '😀'.repeat(50) }), 1008],
  ];
  for (const [name, text, code] of cases) {
    const c = await closeOf((ws) => ws.send(text));
    assert.equal(c.code, code, `${name}: ${c.code} ${c.reason}`);
    assert.ok(c.bytes <= 123, `${name}: ${c.bytes} bytes`);
    assert.ok(!c.reason.includes('\uFFFD'), `${name}: cut inside a character: ${c.reason}`);
    assert.ok((c.messages.at(-1)?.message?.length ?? 0) < 200, `${name}: the error message is bounded`);
  }
  const r = await listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio, seconds: 8 });
  assert.equal(r.code, 1000);
  assert.ok(rightFinal(r));
  await settled();
});

test('a connection that never sends start is closed with 4408', async () => {
  const t0 = performance.now();
  const c = await closeOf(() => {});
  assert.equal(c.code, 4408);
  assert.match(c.reason, /no start message within 1 s/);
  assert.equal(c.messages.at(-1)?.code, 'START_TIMEOUT');
  assert.ok(performance.now() - t0 < 4000);
  await settled();
});

test('a trickle that keeps the idle timer quiet is closed with 4409; a real-time stream is not', { timeout: 60_000 }, async () => {
  const trickle = closeOf((ws) => {
    ws.send(start());
    let at = 0;
    const timer = setInterval(() => (ws.readyState === ws.OPEN ? ws.send(audio.subarray(at, ++at)) : clearInterval(timer)), 500);
  });
  const honest = listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio, seconds: 8 });
  const [t, h] = await Promise.all([trickle, honest]);
  assert.equal(t.code, 4409, t.reason);
  assert.match(t.reason, /slower than real time/);
  assert.equal(t.messages.at(-1)?.code, 'TOO_SLOW');
  assert.equal(h.code, 1000, h.reason);
  assert.ok(rightFinal(h));
  await settled();
});

test('sessions per address are capped (4430); behind a trusted proxy each forwarded address counts apart', async () => {
  const open = (xff: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(), { headers: { 'x-forwarded-for': xff } });
      ws.on('open', () => {
        ws.send(start());
        resolve(ws);
      });
      ws.on('error', reject);
    });
  const held = await Promise.all([open('10.0.0.1'), open('10.0.0.1'), open('198.51.100.7, 10.0.0.1')]);
  const refused = await closeOf(() => {}, { 'x-forwarded-for': '10.0.0.1' });
  assert.equal(refused.code, 4430);
  assert.match(refused.reason, /from one address \(3\)/);
  const other = await open('10.0.0.2');
  for (const ws of [...held, other]) ws.close();
  await settled();
  // Once they are gone, the address may listen again.
  const again = await open('10.0.0.1');
  again.close();
  await settled();
});

test('a stalled event loop does not count against clients: a stream sent through it ends right', { timeout: 60_000 }, async () => {
  // The client runs in its own process, so that it keeps sending in real time while this one (the
  // server) is stalled, as a server behind on its work is.
  const script = path.join(CLIP_DIR, 'stall-client.mjs');
  const client = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'tools', 'listen-client.js');
  await writeFile(
    script,
    `import { listen } from ${JSON.stringify(client)};
     import { readFileSync } from 'node:fs';
     const r = await listen(process.argv[2], { start: { type: 'start', format: 'webm-opus' }, audio: readFileSync(process.argv[3]), seconds: 8 });
     process.stdout.write(JSON.stringify(r));`,
  );
  const webm = path.join(CLIP_DIR, `${catalog[1]!.name}-40-8-clean.live.webm`);
  const child = spawn(process.execPath, [script, wsUrl(), webm], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // Stall past the idle limit (10 s) while the client streams and then sends stop. The stall
  // starts in an I/O callback (the file read), as a server's own work does: the timers that come
  // due meanwhile run next, before the loop reads what the client sent.
  await new Promise((r) => setTimeout(r, 3000));
  await readFile(webm);
  const until = performance.now() + 11_000;
  while (performance.now() < until) {
    // busy: the server's loop is stalled
  }
  await exited;
  const r = JSON.parse(out) as ListenResult;
  assert.equal(r.code, 1000, `${r.code} ${r.reason}`);
  assert.ok(rightFinal(r));
  await settled();
});
