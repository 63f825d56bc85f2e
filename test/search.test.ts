// Clip search in the matching threads, through real HTTP: uploads decoded (in process and by
// ffmpeg) and matched in worker threads, many at once, one thread killed mid-search.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startServer, type RunningServer } from '../src/serve.js';
import { CACHE_DIR, CONDITIONS, makeClip, type CorpusTrack } from '../tools/corpus.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';

let server: RunningServer;
let catalog: CorpusTrack[];
let outside: CorpusTrack[];

before(async () => {
  ({ catalog, outside } = await smallCorpusSplit());
  server = await startServer(await tempDataDir('server', { port: 0, matchThreads: 2 }));
  const s = await server.engine.ingest(catalog.slice(0, 4).map((t) => t.file));
  assert.equal(s.created, 4);
});
after(async () => {
  await server?.close();
});

const run = promisify(execFile);
const clip = (t: CorpusTrack, start: number, seconds: number, cond: string) => {
  const c = CONDITIONS.find((x) => x.name === cond)!;
  return makeClip(t.file, path.join(CACHE_DIR, 'test-clips', `${t.name}-${start}-${seconds}-${c.name.replace(/\W+/g, '_')}.${c.ext}`), start, seconds, c);
};

interface Answer {
  status: number;
  code?: string;
  message?: string;
  matches: { file: string; offset: number; aligned: number; confidence: number }[];
}
async function search(data: Uint8Array, name: string): Promise<Answer> {
  const form = new FormData();
  form.append('audio', new Blob([new Uint8Array(data)]), name);
  form.append('mode', 'exact');
  const res = await fetch(`${server.url}/api/v1/search`, { method: 'POST', body: form });
  const body = (await res.json()) as {
    error?: { code: string; message: string };
    exact_matches?: { track: { file_name: string }; offset_seconds: number; aligned_hashes: number; confidence: number }[];
  };
  return {
    status: res.status,
    ...(body.error ? { code: body.error.code, message: body.error.message } : {}),
    matches: (body.exact_matches ?? []).map((m) => ({
      file: m.track.file_name,
      offset: m.offset_seconds,
      aligned: m.aligned_hashes,
      confidence: m.confidence,
    })),
  };
}
const idle = async () => {
  const busy = () => server.engine.threadStats().clips.reduce((a, b) => a + b, 0);
  for (let i = 0; i < 40 && busy(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(server.engine.threadStats(), { sessions: [0, 0], clips: [0, 0] });
};

test('clips searched many at once get the answers they get one at a time, and the threads end with none left', async () => {
  const queries: { name: string; data: Uint8Array; truth?: string }[] = [];
  for (const t of catalog.slice(0, 4)) {
    for (const [start, seconds, cond] of [
      [20, 5, 'Opus 32k WebM'],
      [40, 10, 'clean'],
      [30, 8, 'speed 1.02'],
    ] as const) {
      const file = await clip(t, start, seconds, cond);
      queries.push({ name: path.basename(file), data: await readFile(file), truth: t.name });
    }
  }
  const none = await clip(outside[0]!, 20, 6, 'Opus 32k WebM');
  queries.push({ name: 'outside.webm', data: await readFile(none) });
  queries.push({ name: 'short.wav', data: await readFile(await clip(catalog[0]!, 30, 2, 'clean')) });
  queries.push({ name: 'text.webm', data: Buffer.from('not audio at all '.repeat(40)) });

  const alone: Answer[] = [];
  for (const q of queries) alone.push(await search(q.data, q.name));
  for (const [i, q] of queries.entries()) {
    if (q.truth) assert.equal(alone[i]!.matches[0]?.file, q.truth, q.name);
  }
  assert.deepEqual(
    alone.slice(-3).map((a) => [a.status, a.code, a.matches.length]),
    [
      [200, undefined, 0],
      [422, 'AUDIO_TOO_SHORT', 0],
      [415, 'UNSUPPORTED_FORMAT', 0],
    ],
  );

  for (let round = 0; round < 2; round++) {
    const together = await Promise.all(queries.map((q) => search(q.data, q.name)));
    assert.deepEqual(together, alone);
  }
  await idle();
});

/** The top-level boxes of an MP4 file, in order. */
function boxes(data: Buffer): string[] {
  const types: string[] = [];
  for (let at = 0; at + 8 <= data.length; ) {
    const size = data.readUInt32BE(at);
    types.push(data.toString('latin1', at + 4, at + 8));
    const len = size === 1 ? Number(data.readBigUInt64BE(at + 8)) : size === 0 ? data.length - at : size;
    if (len < 8) break;
    at += len;
  }
  return types;
}

test('an M4A with its index (moov) after the audio is decoded from a seekable file and found', async () => {
  const t = catalog[1]!;
  const m4a = path.join(CACHE_DIR, 'test-clips', `${t.name}-40-10-moov-at-end.m4a`);
  // ffmpeg's defaults write the moov box at the end (no +faststart).
  if (!existsSync(m4a)) await run('ffmpeg', ['-v', 'error', '-y', '-ss', '40', '-t', '10', '-i', t.file, '-vn', '-c:a', 'aac', '-b:a', '128k', m4a]);
  const data = await readFile(m4a);
  const order = boxes(data);
  assert.ok(order.includes('mdat') && order.indexOf('moov') > order.indexOf('mdat'), order.join(' '));
  const a = await search(data, 'clip.m4a');
  assert.deepEqual([a.status, a.code, a.matches[0]?.file], [200, undefined, t.name]);
  assert.ok(Math.abs(a.matches[0]!.offset - 40) <= 0.5, String(a.matches[0]!.offset));
  await idle();
});

test('a matching thread that dies fails only its own searches (500 INTERNAL), is replaced, and later searches are answered', async () => {
  const t = catalog[2]!;
  const data = await readFile(await clip(t, 10, 25, 'clean')); // WAV: decoded by an ffmpeg child of the thread
  const inFlight = Array.from({ length: 8 }, () => search(data, 'clip.wav'));
  // Waited for by the clock, not by a count of turns: on a loaded machine the uploads take longer
  // to reach the thread than 400 turns of the event loop (a CI run failed so).
  for (const until = Date.now() + 10_000; Date.now() < until && server.engine.threadStats().clips[0]! < 2; ) {
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.ok(server.engine.threadStats().clips[0]! >= 2, 'two clips in flight on the first thread');
  // The thread is ended from outside, as a crash of its own would end it.
  await (server.engine as unknown as { threads: { threads: { worker: Worker }[] } }).threads.threads[0]!.worker.terminate();
  const answers = await Promise.all(inFlight);
  const failed = answers.filter((a) => a.status !== 200);
  assert.ok(failed.length >= 2 && failed.length < answers.length, `${failed.length} of ${answers.length} failed`);
  // Clients get no internal text: a reference to the log line that holds it.
  for (const a of failed) {
    assert.deepEqual([a.status, a.code], [500, 'INTERNAL']);
    assert.match(a.message ?? '', /^internal error \(ref [0-9a-f-]{36}\)$/);
  }
  for (const a of answers.filter((x) => x.status === 200)) assert.equal(a.matches[0]?.file, t.name);
  await idle();

  const later = await Promise.all(Array.from({ length: 4 }, () => search(data, 'clip.wav')));
  for (const a of later) assert.deepEqual([a.status, a.matches[0]?.file], [200, t.name]);
  await idle();
});
