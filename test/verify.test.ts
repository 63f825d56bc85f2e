import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { FingerprintIndex } from '../src/exact/fingerprint-index.js';
import { FRAME_SECONDS, fingerprint, FingerprintStream, PROFILES } from '../src/exact/fingerprint.js';
import type { Candidate, Placement } from '../src/exact/matcher.js';
import { DataStore } from '../src/exact/lmdb.js';
import { MIN_VERIFIED_FRAMES, QuerySketch, verify } from '../src/exact/verify.js';
import { fetchCorpus } from '../tools/corpus.js';

const HOP = PROFILES.query.hop;
const tracks = async () => {
  const all = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  return Promise.all([all[0]!, all[1]!].map(async (t) => (await decodeFile(t.file)).subarray(0, 60 * SAMPLE_RATE)));
};
/** At an offset, unscaled and untransposed. */
const flat = (offsetFrames: number) => ({ offsetFrames, timeScale: 1, pitchShiftCents: 0 });
const sketchOf = (pcm: Float32Array) => Uint16Array.from(fingerprint(pcm, 'index').sketches[0]!);
const querySketch = (pcm: Float32Array) => {
  const s = new FingerprintStream('query');
  const q = new QuerySketch(s.sketchLayout());
  q.append(s.push(pcm).sketches);
  return q;
};

test('a clip agrees with its own track at its offset, and neither elsewhere nor with another track', async () => {
  const [a, b] = await tracks();
  const catalog = sketchOf(a!);
  // A start between frames: one of the query's two phases lies within a quarter hop.
  const start = 20 * SAMPLE_RATE + 137;
  const q = querySketch(a!.subarray(start, start + 5 * SAMPLE_RATE));
  const offset = Math.round(start / HOP);
  const right = q.bitErrorRate(catalog, flat(offset))!;
  assert.ok(right < 0.15, `bit error rate at the right offset: ${right}`);
  for (const off of [offset - 40, offset + 100]) assert.ok(q.bitErrorRate(catalog, flat(off))! > 0.4, `at offset ${off}`);
  assert.ok(q.bitErrorRate(sketchOf(b!), flat(offset))! > 0.4, 'another track');
});

test('verification needs 1.5 s of frames, and a live session compares only the frames it keeps', async () => {
  const [a] = await tracks();
  const catalog = sketchOf(a!);
  const offset = 940;
  const start = offset * HOP;
  const short = querySketch(a!.subarray(start, start + (MIN_VERIFIED_FRAMES - 1) * HOP));
  assert.equal(short.bitErrorRate(catalog, flat(offset)), undefined);
  assert.notEqual(short.bitErrorRate(catalog, flat(offset), 10), undefined);

  // A stream whose first 156 frames (5 s) are another passage: once they are dropped, it verifies.
  const s = new FingerprintStream('query');
  const q = new QuerySketch(s.sketchLayout());
  const other = 156;
  q.append(s.push(a!.subarray(160 * HOP, (160 + other) * HOP)).sketches);
  q.append(s.push(a!.subarray(start, start + other * HOP)).sketches);
  const mixed = q.bitErrorRate(catalog, flat(offset - other))!;
  q.dropBefore(other + 2);
  const kept = q.bitErrorRate(catalog, flat(offset - other))!;
  assert.ok(mixed > 0.25 && kept < 0.15, `with the other passage ${mixed}, without ${kept}`);
});

test('a match is placed where the sketch agrees clearly best of the offsets its track aligned at', async () => {
  const [a, b] = await tracks();
  const passage = a!.subarray(20 * SAMPLE_RATE, 25 * SAMPLE_RATE);
  // A track that plays the passage, then other music, then the passage again: with another
  // track mixed in (a variation, as a loop arranged anew), or with a trace of it (a copy that
  // agrees a little less than the first, by about as much as noise makes two copies differ).
  const track = (again: Float32Array) => {
    const t = new Float32Array(passage.length * 3);
    t.set(passage, 0);
    t.set(b!.subarray(0, passage.length), passage.length);
    t.set(again, 2 * passage.length);
    return t;
  };
  const mixed = (gain: number) => passage.map((x, i) => x + gain * b!.subarray(30 * SAMPLE_RATE)[i]!);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-verify-'));
  const store = DataStore.open(dir);
  try {
    const index = new FingerprintIndex(store);
    store.transaction(() =>
      index.add([
        { track: 1, fp: fingerprint(track(mixed(1)), 'index') },
        { track: 2, fp: fingerprint(track(mixed(0.01)), 'index') },
      ]),
    );
    const q = querySketch(passage);
    const at = (frames: number, alignedHashes: number): Placement => ({
      fpId: 0,
      offsetFrames: frames,
      offsetSeconds: frames * FRAME_SECONDS,
      timeScale: 1,
      pitchShiftCents: 0,
      alignedHashes,
      startFrame: 0,
    });
    const later = Math.round((2 * passage.length) / PROFILES.index.hop);
    const candidate = (fpId: number): Candidate => ({ ...at(later, 40), fpId, elsewhere: [{ ...at(0, 30), fpId }] });
    // Loose enough for the variation to verify: the test is where the match is placed.
    const acc = { minAligned: 5, maxBitErrorRate: 0.45 };

    const [moved] = verify([candidate(1)], q, index, acc);
    assert.ok(moved, 'the variation verifies');
    assert.equal(moved.offsetFrames, 0, 'placed at the passage itself');
    assert.equal(moved.alignedHashes, 40, "the evidence stays the most aligned offset's");
    assert.ok(q.bitErrorRate(index.sketch(1)!, flat(0))! < moved.bitErrorRate - 0.05);

    const copy = index.sketch(2)!;
    assert.ok(q.bitErrorRate(copy, flat(0))! < q.bitErrorRate(copy, flat(later))!, 'the first copy agrees better');
    const [kept] = verify([candidate(2)], q, index, acc);
    assert.equal(kept?.offsetFrames, later, 'a copy that agrees about as well does not take the place of the most aligned one');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
