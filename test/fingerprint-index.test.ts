import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { open } from 'lmdb';
import { isAppError } from '../src/base/errors.js';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { FingerprintIndex, type QueryPostings } from '../src/exact/fingerprint-index.js';
import { fingerprint, type Fingerprint } from '../src/exact/fingerprint.js';
import { DataStore } from '../src/exact/lmdb.js';
import { fetchCorpus } from '../tools/corpus.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function freshStore(): Promise<DataStore> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-index-'));
  dirs.push(dir);
  return DataStore.open(dir);
}

/** The postings as sorted "track:hash:offset:queryTime" strings: the order within a bucket is free. */
function postingSet(p: QueryPostings): string[] {
  const out: string[] = [];
  for (let i = 0; i < p.length; i++) out.push(`${p.track[i]}:${p.hash[i]}:${p.offset[i]}:${p.queryTime[i]}`);
  return out.sort();
}

test('an index written in many commits (merged generations) answers as one written at once, before and after a deletion', async () => {
  const corpus = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name)).slice(0, 6);
  const tracks: { track: number; fp: Fingerprint }[] = [];
  for (const [i, t] of corpus.entries()) tracks.push({ track: i + 1, fp: fingerprint((await decodeFile(t.file)).subarray(0, 60 * SAMPLE_RATE), 'index') });
  const query = fingerprint((await decodeFile(corpus[2]!.file)).subarray(20 * SAMPLE_RATE, 30 * SAMPLE_RATE), 'query');

  const once = await freshStore();
  const many = await freshStore();
  const a = new FingerprintIndex(once);
  const b = new FingerprintIndex(many);
  once.transaction(() => a.add(tracks));
  for (const t of tracks) many.transaction(() => b.add([t]));
  assert.deepEqual(
    Array.from(b.sketch(2)!),
    Array.from(tracks[1]!.fp.sketches[0]!, (w) => w & 0xffff),
  );
  const before = postingSet(a.lookup(query));
  assert.ok(before.length > 100, `postings found: ${before.length}`);
  assert.deepEqual(postingSet(b.lookup(query)), before);
  assert.equal(b.stats().postings, a.stats().postings);

  for (const [s, idx] of [
    [once, a],
    [many, b],
  ] as const)
    s.transaction(() => idx.remove(3));
  const afterRemove = postingSet(a.lookup(query));
  assert.ok(afterRemove.every((p) => !p.startsWith('3:')) && afterRemove.length < before.length);
  assert.deepEqual(postingSet(b.lookup(query)), afterRemove);
  assert.deepEqual(b.trackNumbers().sort(), [1, 2, 4, 5, 6]);
  assert.equal(b.sketch(3), undefined, 'a deleted track keeps no sketch');

  // A later commit after the deletion still lands beside the merged generations.
  many.transaction(() => b.add([tracks[2]!]));
  once.transaction(() => a.add([tracks[2]!]));
  assert.deepEqual(postingSet(b.lookup(query)), postingSet(a.lookup(query)));
  await once.close();
  await many.close();
});

test('an index of another layout or parameters is refused with a request to rebuild it', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-index-'));
  dirs.push(dir);
  const raw = open({ path: path.join(dir, 'index'), maxDbs: 16 });
  await raw.openDB({ name: 'index_meta', encoding: 'msgpack' }).put('version', 'lm1:{"older":"layout"}');
  await raw.close();
  const store = DataStore.open(dir);
  try {
    assert.throws(
      () => new FingerprintIndex(store),
      (e: unknown) => isAppError(e) && e.code === 'INDEX_MISMATCH' && /rebuild-index/.test(e.message),
    );
  } finally {
    await store.close();
  }
});
