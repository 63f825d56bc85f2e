// The fuzzer's regression seeds (test/fuzz-seeds/*.json: cases it found, cut down by hand, and
// the documented answers to them) replayed byte for byte against a real server in this process.
// Each must get what docs/protocol.md and the README say (its `expect`, and the checks the
// fuzzer makes of every case), nothing may escape to the process (a crash of `serve`), and the
// server must still answer afterwards, holding no more sessions, search clips or staged uploads
// than before the seed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Config } from '../src/base/config.js';
import { startServer, type RunningServer } from '../src/serve.js';
import { audioRef, makeAudioSet, TRACKS } from '../tools/fuzz-audio.js';
import type { Resources, SeedFile } from '../tools/fuzz-cases.js';
import { check, replay, summarize } from '../tools/fuzz-replay.js';
import { tempDataDir } from './fixtures.js';

/** dist/test -> the repository's test/fuzz-seeds */
const SEEDS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fuzz-seeds');
const KEY = 'fuzz-test-key-0123456789abcdef';
// Every seed ends well inside the 10 s idle limit; a seed the server never closes fails at this.
const DEADLINE_MS = 15_000;

let server: RunningServer;
let config: Config;
let res: Resources;
// In `serve` an error that escapes a handler ends the process; here it would only reach the
// test runner, so it is collected and each seed asserts that none escaped.
const escaped: unknown[] = [];
process.on('uncaughtException', (e) => escaped.push(e));

before(async () => {
  const audio = await makeAudioSet();
  config = await tempDataDir('server', { apiKey: KEY, port: 0 });
  server = await startServer(config);
  const form = new FormData();
  for (let t = 0; t < TRACKS; t++) form.append('file', new Blob([new Uint8Array(audio.get(audioRef('wav', t))!)]), `fuzz-track-${t}.wav`);
  const r = await fetch(`${server.url}/api/v1/tracks`, { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 201);
  const body = (await r.json()) as { tracks: { track: { id: string } }[] };
  res = { audio, apiKey: KEY, trackIds: body.tracks.map((t) => t.track.id) };
});
after(async () => {
  const closed = await Promise.race([server?.close().then(() => true), sleep(20_000).then(() => false)]);
  // A connection the server lost track of (as an escaped error leaves one) holds close() and this
  // process open for good: fail, and leave once the runner has the result.
  if (!closed) setTimeout(() => process.exit(1), 2000).unref();
  assert.ok(closed, 'the server closes within 20 s');
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The gauges that count what the server holds for clients. */
async function held(): Promise<{ sessions: number; clips: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? -1);
  return { sessions: gauge('audio_ident_listen_sessions'), clips: gauge('audio_ident_search_clips_in_threads') };
}

/** What the server holds once it is back to `before`, or after 5 s. */
async function heldAfter(before: { sessions: number; clips: number }): Promise<{ sessions: number; clips: number }> {
  let now = await held();
  for (let i = 0; i < 50 && (now.sessions > before.sessions || now.clips > before.clips); i++) {
    await sleep(100);
    now = await held();
  }
  return now;
}

const seeds = readdirSync(SEEDS)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('there are seeds to replay', () => {
  assert.ok(seeds.length >= 10, `${seeds.length} seed files in ${SEEDS}`);
});

for (const file of seeds) {
  const seed = JSON.parse(readFileSync(path.join(SEEDS, file), 'utf8')) as SeedFile;
  test(`${file}: ${seed.note ?? seed.name}`, { timeout: 60_000 }, async () => {
    const before = await held();
    const o = await replay(seed.case, { url: server.url, res, deadlineMs: DEADLINE_MS });
    // The server runs on here, so a connection dropped without a close frame broke the protocol.
    assert.deepEqual(
      check(seed.case, o, { dropIsFailure: true }).map((f) => f.detail),
      [],
      JSON.stringify(summarize(o)),
    );
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200, 'the server still answers');
    // Against the count before the seed, so that one seed's leak does not fail the next.
    const now = await heldAfter(before);
    assert.ok(now.sessions <= before.sessions && now.clips <= before.clips, `holds ${JSON.stringify(now)}, before the seed ${JSON.stringify(before)}`);
    assert.deepEqual(readdirSync(path.join(config.dataDir, 'uploads')), []);
    // Last, so that an error a request's leftovers raise after its answer has had time to escape.
    assert.deepEqual(escaped.splice(0).map(String), [], 'nothing escaped to the process');
  });
}
