import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isAppError } from '../src/base/errors.js';
import { decodeFile } from '../src/audio/decode.js';
import { Engine } from '../src/engine/engine.js';
import { fingerprint } from '../src/exact/fingerprint.js';
import { FingerprintIndex } from '../src/exact/fingerprint-index.js';
import { DataStore } from '../src/exact/lmdb.js';
import type { Config } from '../src/base/config.js';
import { listAudioFiles } from '../src/engine/ingest.js';
import { CONDITIONS, makeClip, type CorpusTrack, CLIP_DIR } from '../tools/corpus.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';

let engine: Engine;
let config: Config;
let catalog: CorpusTrack[];
let outside: CorpusTrack[];
const run = promisify(execFile);

before(async () => {
  ({ catalog, outside } = await smallCorpusSplit());
  config = await tempDataDir();
  engine = await Engine.open(config);
  const summary = await engine.ingest(catalog.map((t) => t.file));
  assert.equal(summary.created, catalog.length, JSON.stringify(summary.outcomes.filter((o) => o.status === 'failed')));
});

after(async () => {
  await engine?.close();
});

const clip = (t: CorpusTrack, start: number, cond: string, seconds = 5) => {
  const c = CONDITIONS.find((x) => x.name === cond)!;
  return makeClip(t.file, path.join(CLIP_DIR, `${t.name}-${start}-${seconds}-${c.name.replace(/\W+/g, '_')}.${c.ext}`), start, seconds, c);
};

const assertMatch = async (file: string, t: CorpusTrack, start: number) => {
  const matches = await engine.identify(await decodeFile(file));
  assert.ok(matches.length > 0, `no match for ${path.basename(file)}`);
  assert.equal(matches[0]!.track.file_name, t.name);
  assert.ok(Math.abs(matches[0]!.offsetSeconds - start) <= 0.5, `offset ${matches[0]!.offsetSeconds} vs ${start}`);
  assert.ok(matches[0]!.confidence > 0.5 && matches[0]!.confidence <= 1);
};

test('clean and Opus-coded excerpts identify the right track and offset', async () => {
  for (const [i, t] of catalog.slice(0, 6).entries()) {
    const start = 20 + 3.7 * i;
    for (const cond of ['clean', 'Opus 32k WebM']) await assertMatch(await clip(t, start, cond), t, start);
  }
});

test('noisy excerpts mostly identify, and never as the wrong track', async () => {
  // bench:accuracy measures the rates on hundreds of clips (docs/benchmarks.md); this floor catches regressions without pretending to more on 12 clips.
  let right = 0;
  let total = 0;
  for (const [i, t] of catalog.slice(0, 6).entries()) {
    const start = 20 + 3.7 * i;
    for (const cond of ['white 10 dB', 'babble 5 dB']) {
      const matches = await engine.identify(await decodeFile(await clip(t, start, cond)));
      total++;
      if (matches.length === 0) continue;
      assert.equal(matches[0]!.track.file_name, t.name, `${cond} clip of ${t.name} matched another track`);
      if (Math.abs(matches[0]!.offsetSeconds - start) <= 0.5) right++;
    }
  }
  console.log(`noisy excerpts identified: ${right}/${total}`);
  assert.ok(right >= Math.ceil(total * 0.65), `${right}/${total} noisy excerpts identified`);
});

test('a recording played faster, slower or transposed is found, with its time scale and transposition', async () => {
  // Speed changes tempo and pitch together (a turntable, a radio playing fast), tempo keeps the
  // pitch, pitch keeps the tempo: the truth of each is known from how the clip was made.
  const cases: { steps: string[]; scale: number; cents: number }[] = [
    { steps: ['speed:0.96'], scale: 0.96, cents: 1200 * Math.log2(0.96) },
    { steps: ['speed:1.05'], scale: 1.05, cents: 1200 * Math.log2(1.05) },
    { steps: ['tempo:0.95'], scale: 0.95, cents: 0 },
    { steps: ['tempo:1.04'], scale: 1.04, cents: 0 },
    { steps: ['pitch:100'], scale: 1, cents: 100 },
    { steps: ['pitch:-50'], scale: 1, cents: -50 },
  ];
  for (const [i, t] of catalog.slice(0, 4).entries()) {
    const start = 25 + 4.1 * i;
    for (const c of cases) {
      const name = c.steps.join('_').replace(/\W+/g, '_');
      const file = await makeClip(t.file, path.join(CLIP_DIR, `${t.name}-${start}-5-${name}.wav`), start, 5, { name, steps: c.steps, ext: 'wav' });
      const [m] = await engine.identify(await decodeFile(file));
      const label = `${t.name} ${name}`;
      assert.equal(m?.track.file_name, t.name, label);
      assert.ok(Math.abs(m.offsetSeconds - start) <= 0.5, `${label}: offset ${m.offsetSeconds} vs ${start}`);
      assert.ok(Math.abs(m.timeScale - c.scale) <= 0.01, `${label}: time scale ${m.timeScale}`);
      assert.ok(Math.abs(m.pitchShiftCents - c.cents) <= 40, `${label}: ${m.pitchShiftCents} cents`);
    }
  }
});

test('music that is not in the catalog gives no match', async () => {
  for (const t of outside) {
    for (const start of [15, 40]) {
      const matches = await engine.identify(await decodeFile(await clip(t, start, 'clean')));
      assert.deepEqual(matches, [], `${t.name} matched ${matches[0]?.track.file_name}`);
    }
  }
});

test('re-ingesting the same files skips them and leaves the index as it was', async () => {
  const before = engine.stats();
  const summary = await engine.ingest(await listAudioFiles(catalog.map((t) => t.file)));
  assert.equal(summary.skipped, catalog.length);
  assert.equal(summary.created, 0);
  assert.deepEqual(engine.stats().postings, before.postings);
  assert.equal((await engine.listTracks()).total, catalog.length);
});

test('deleting a track removes its postings, its row and its file', async () => {
  const t = catalog[catalog.length - 1]!;
  const track = (await engine.listTracks()).tracks.find((x) => x.file_name === t.name)!;
  const q = await clip(t, 30, 'clean');
  assert.equal((await engine.identify(await decodeFile(q)))[0]?.track.id, track.id);
  const before = engine.stats();
  assert.ok(existsSync(engine.originalPath(track)));
  await engine.removeTrack(track.id);
  assert.deepEqual(await engine.identify(await decodeFile(q)), []);
  assert.equal(await engine.getTrack(track.id), undefined);
  assert.ok(!existsSync(engine.originalPath(track)));
  assert.equal(engine.stats().tracks, before.tracks - 1);
  const removed = engine.stats().postings;
  assert.ok(removed < before.postings);
  // Ingesting it again brings its postings back (not exactly the same count: which buckets keep
  // only a common marker depends on the merges, see MAX_BUCKET_POSTINGS).
  const again = await engine.ingest([t.file]);
  assert.equal(again.created, 1);
  assert.ok(engine.stats().postings > removed);
  await assertMatch(q, t, 30);
});

test('every error path gives a typed error naming the file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-errors-'));
  const missing = path.join(dir, 'missing.ogg');
  const corrupt = path.join(dir, 'corrupt.ogg');
  const text = path.join(dir, 'notes.mp3');
  await writeFile(corrupt, Buffer.concat([Buffer.from('OggS'), Buffer.alloc(5000, 7)]));
  await writeFile(text, 'these are not the sounds you are looking for\n'.repeat(50));
  const expectCode = async (p: Promise<unknown>, code: string, name: string) => {
    await assert.rejects(p, (e: unknown) => isAppError(e) && e.code === code && e.message.includes(name));
  };
  await expectCode(decodeFile(missing), 'FILE_NOT_FOUND', 'missing.ogg');
  await expectCode(decodeFile(corrupt), 'DECODE_FAILED', 'corrupt.ogg');
  await expectCode(decodeFile(text), 'UNSUPPORTED_FORMAT', 'notes.mp3');
  const short = await clip(catalog[0]!, 10, 'clean', 2);
  await assert.rejects(
    async () => await engine.identify(await decodeFile(short)),
    (e: unknown) => isAppError(e, 'AUDIO_TOO_SHORT'),
  );
  // Ingest reports each failure and goes on with the rest.
  const before = engine.stats();
  const summary = await engine.ingest([missing, corrupt, text, short]);
  assert.deepEqual(
    summary.outcomes.map((o) => (o.status === 'failed' ? o.code : o.status)),
    ['FILE_NOT_FOUND', 'DECODE_FAILED', 'UNSUPPORTED_FORMAT', 'AUDIO_TOO_SHORT'],
  );
  assert.deepEqual(engine.stats(), before);
});

// Re-encodings of a catalog recording, cached beside the test clips.
const reencode = async (t: CorpusTrack, label: string, args: string[], ext: string) => {
  const out = path.join(CLIP_DIR, `${t.name}.${label}.${ext}`);
  if (!existsSync(out)) await run(process.env.FFMPEG_PATH ?? 'ffmpeg', ['-v', 'error', '-y', '-i', t.file, '-vn', '-map_metadata', '-1', ...args, out]);
  return out;
};

test('another copy of a catalog recording is reported as its duplicate; distinct recordings are added', async () => {
  const copies: { file: string; of: CorpusTrack }[] = [];
  for (const t of catalog.slice(0, 3)) {
    copies.push({ file: await reencode(t, 'mp3-128k', ['-c:a', 'libmp3lame', '-b:a', '128k'], 'mp3'), of: t });
    copies.push({ file: await reencode(t, 'aac-64k', ['-c:a', 'aac', '-b:a', '64k'], 'm4a'), of: t });
    copies.push({ file: await reencode(t, 'opus-32k', ['-c:a', 'libopus', '-b:a', '32k'], 'webm'), of: t });
  }
  const before = engine.stats();
  const dup = await engine.ingest(copies.map((c) => c.file));
  dup.outcomes.forEach((o, i) => {
    assert.equal(o.status, 'duplicate', `${path.basename(copies[i]!.file)}: ${JSON.stringify(o)}`);
    if (o.status !== 'duplicate') return;
    assert.equal(o.reason, 'same_recording');
    assert.equal(o.track.file_name, copies[i]!.of.name);
  });
  assert.deepEqual(engine.stats(), before);
  const reports = await engine.duplicateReports();
  assert.equal(reports.filter((r) => r.reason === 'same_recording').length, copies.length);

  // Tracks of the same games (same instruments, often the same tempo) are distinct recordings.
  const distinct = await engine.ingest(outside.map((t) => t.file));
  assert.deepEqual(
    distinct.outcomes.map((o) => o.status),
    outside.map(() => 'created'),
  );
  const added = distinct.outcomes.flatMap((o) => (o.status === 'created' ? [o.track.fpId] : []));
  for (const o of distinct.outcomes) if (o.status === 'created') await engine.removeTrack(o.track.id);
  // Their postings are gone. (Buckets they made common stay skipped: the count may be lower.)
  assert.ok(engine.stats().postings <= before.postings);
  // A reader of its own, as a matching thread has: the posting lists themselves, not a count.
  const store = DataStore.openReader(config.dataDir);
  const index = new FingerprintIndex(store);
  try {
    for (const t of outside) {
      const found = index.lookup(fingerprint((await decodeFile(t.file)).subarray(0, 30 * 16000), 'query'));
      assert.ok(!found.track.subarray(0, found.length).some((n) => added.includes(n)), `postings of ${t.name} remain`);
    }
  } finally {
    await store.close();
  }
});
