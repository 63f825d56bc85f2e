import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFile, SAMPLE_RATE } from '../src/pipeline/decode.js';
import { fingerprint, FingerprintStream, PROFILES } from '../src/pipeline/fingerprint.js';
import { MIN_VERIFIED_FRAMES, QuerySketch } from '../src/pipeline/verify.js';
import { fetchCorpus } from './corpus.js';

const HOP = PROFILES.query.hop;
const tracks = async () => {
  const all = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  return Promise.all([all[0]!, all[1]!].map(async (t) => (await decodeFile(t.file)).subarray(0, 60 * SAMPLE_RATE)));
};
const sketchOf = (pcm: Float32Array) => Uint16Array.from(fingerprint(pcm, 'index').sketches[0]!);
const querySketch = (pcm: Float32Array) => {
  const s = new FingerprintStream('query');
  const q = new QuerySketch(s.phaseCount);
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
  const right = q.bitErrorRate(catalog, offset)!;
  assert.ok(right < 0.15, `bit error rate at the right offset: ${right}`);
  for (const off of [offset - 40, offset + 100]) assert.ok(q.bitErrorRate(catalog, off)! > 0.4, `at offset ${off}`);
  assert.ok(q.bitErrorRate(sketchOf(b!), offset)! > 0.4, 'another track');
});

test('verification needs 1.5 s of frames, and a live session compares only the frames it keeps', async () => {
  const [a] = await tracks();
  const catalog = sketchOf(a!);
  const offset = 940;
  const start = offset * HOP;
  const short = querySketch(a!.subarray(start, start + (MIN_VERIFIED_FRAMES - 1) * HOP));
  assert.equal(short.bitErrorRate(catalog, offset), undefined);
  assert.notEqual(short.bitErrorRate(catalog, offset, 10), undefined);

  // A stream whose first 156 frames (5 s) are another passage: once they are dropped, it verifies.
  const s = new FingerprintStream('query');
  const q = new QuerySketch(s.phaseCount);
  const other = 156;
  q.append(s.push(a!.subarray(160 * HOP, (160 + other) * HOP)).sketches);
  q.append(s.push(a!.subarray(start, start + other * HOP)).sketches);
  const mixed = q.bitErrorRate(catalog, offset - other)!;
  q.dropBefore(other + 2);
  const kept = q.bitErrorRate(catalog, offset - other)!;
  assert.ok(mixed > 0.25 && kept < 0.15, `with the other passage ${mixed}, without ${kept}`);
});
