// One contract for every vector store backend: the embedded usearch index always, Qdrant when
// QDRANT_URL names a server (none can run on the machine these tests were written on; the suite
// says so rather than fake one).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isAppError } from '../src/base/errors.js';
import { QdrantStore } from '../src/vibe/store/qdrant-store.js';
import { UsearchStore } from '../src/vibe/store/usearch-store.js';
import type { VectorPoint, VectorSpace, VectorStore } from '../src/vibe/store/vector-store.js';
import { rng } from '../tools/corpus.js';

const SPACE: VectorSpace = { id: 'test-model', dim: 32 };
const OTHER: VectorSpace = { id: 'other-model', dim: 32 };

function randomVector(r: () => number, dim = SPACE.dim): Float32Array {
  return Float32Array.from({ length: dim }, () => r() * 2 - 1);
}

/** A track's vectors: one track vector and `chunks` chunk vectors at 5 s steps. */
function trackPoints(fpId: number, chunks: number, r: () => number): VectorPoint[] {
  const trackId = randomUUID();
  return [
    { fpId, trackId, kind: 'track', startSeconds: 0, vector: randomVector(r) },
    ...Array.from({ length: chunks }, (_, i) => ({ fpId, trackId, kind: 'chunk' as const, startSeconds: i * 5, vector: randomVector(r) })),
  ];
}

interface Backend {
  name: string;
  /** A fresh, empty store, and a way to open another handle on the same store (a restart). */
  create(): Promise<{ store: VectorStore; reopen(): Promise<VectorStore> }>;
  skip?: string;
}

const backends: Backend[] = [
  {
    name: 'usearch (embedded)',
    create: async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-vectors-'));
      return { store: UsearchStore.open(dir), reopen: async () => UsearchStore.open(dir) };
    },
  },
  {
    name: 'qdrant',
    skip: process.env.QDRANT_URL ? undefined : 'QDRANT_URL is not set: no Qdrant server to run the contract against',
    create: async () => {
      const collection = `audio_ident_test_${randomUUID().slice(0, 8)}`;
      const open = async () => QdrantStore.open({ url: process.env.QDRANT_URL!, apiKey: process.env.QDRANT_API_KEY, collection });
      return { store: await open(), reopen: open };
    },
  },
];

for (const b of backends) {
  describe(`vector store contract: ${b.name}`, { skip: b.skip }, () => {
    test('an empty store has no space, no vectors and finds nothing', async () => {
      const { store } = await b.create();
      assert.equal(await store.space(), undefined);
      assert.deepEqual(await store.count(), { track: 0, chunk: 0 });
      assert.deepEqual((await store.search(SPACE, { vector: randomVector(rng(1)) }, 'track', 5)).hits, []);
      assert.deepEqual(await store.trackNumbers(), []);
      await store.clear();
    });

    test('finds each vector as its own nearest, with its track, kind and chunk start, after a restart too', async () => {
      const { store, reopen } = await b.create();
      const r = rng(2);
      const points = [...trackPoints(1, 6, r), ...trackPoints(2, 3, r), ...trackPoints(700, 40, r)];
      await store.add(SPACE, points);
      assert.deepEqual(await store.space(), SPACE);
      assert.deepEqual(await store.count(), { track: 3, chunk: 49 });
      for (const s of [store, await reopen()]) {
        assert.deepEqual(
          (await s.trackNumbers()).sort((x, y) => x - y),
          [1, 2, 700],
        );
        for (const p of points.filter((_, i) => i % 5 === 0)) {
          const [hit, second] = (await s.search(SPACE, { vector: p.vector }, p.kind, 3)).hits;
          assert.deepEqual({ fpId: hit!.fpId, kind: hit!.kind, startSeconds: hit!.startSeconds }, { fpId: p.fpId, kind: p.kind, startSeconds: p.startSeconds });
          assert.ok(hit!.cosine > 0.999, `cosine of a vector with itself: ${hit!.cosine}`);
          assert.ok(second!.cosine < hit!.cosine);
          assert.equal(second!.kind, p.kind, 'a search returns only vectors of the kind asked for');
        }
      }
      await store.clear();
    });

    test('re-adding a track replaces its vectors; removing tracks removes all of theirs and only theirs', async () => {
      const { store, reopen } = await b.create();
      const r = rng(3);
      const a = trackPoints(10, 4, r);
      const c = trackPoints(11, 4, r);
      await store.add(SPACE, [...a, ...c]);
      const again = trackPoints(10, 4, r);
      await store.add(SPACE, again);
      assert.deepEqual(await store.count(), { track: 2, chunk: 8 });
      const [hit] = (await store.search(SPACE, { vector: again[2]!.vector }, 'chunk', 1)).hits;
      assert.equal(hit!.fpId, 10);
      assert.ok(hit!.cosine > 0.999);
      await store.removeTracks([10, 12345]);
      for (const s of [store, await reopen()]) {
        assert.deepEqual(await s.trackNumbers(), [11]);
        assert.deepEqual(await s.count(), { track: 1, chunk: 4 });
        const { hits } = await s.search(SPACE, { vector: again[0]!.vector }, 'track', 5);
        assert.deepEqual(
          hits.map((h) => h.fpId),
          [11],
        );
      }
      await store.clear();
    });

    test('replaceAll swaps every vector for those of a re-embedding, of another model too', async () => {
      const { store, reopen } = await b.create();
      const r = rng(6);
      await store.add(SPACE, [...trackPoints(1, 3, r), ...trackPoints(2, 3, r)]);
      const fresh = [...trackPoints(2, 2, r), ...trackPoints(3, 1, r)];
      await store.replaceAll(OTHER, fresh);
      for (const s of [store, await reopen()]) {
        assert.deepEqual(await s.space(), OTHER);
        assert.deepEqual((await s.trackNumbers()).sort(), [2, 3]);
        assert.deepEqual(await s.count(), { track: 2, chunk: 3 });
        const [hit] = (await s.search(OTHER, { vector: fresh[1]!.vector }, 'chunk', 1)).hits;
        assert.deepEqual([hit!.fpId, hit!.startSeconds], [2, 0]);
      }
      await store.clear();
    });

    test('compares about the centre of the stored vectors and follows it as the catalog moves, after a restart too', async () => {
      const { store, reopen } = await b.create();
      const r = rng(7);
      // Vectors far off the origin along one direction: by plain cosine they all look alike.
      const offset = randomVector(r).map((x) => 4 * x);
      const around = (sign: number, fpId: number, chunks: number) =>
        trackPoints(fpId, chunks, r).map((p) => ({ ...p, vector: p.vector.map((x, i) => x + sign * offset[i]!) }));
      const first = [...around(1, 1, 8), ...around(1, 2, 8)];
      await store.add(SPACE, first);
      // Then the catalog's mean moves to the other side: a store still centred where it started
      // would give cosines far from those about the mean.
      const later = Array.from({ length: 6 }, (_, i) => around(-1, 10 + i, 8)).flat();
      await store.add(SPACE, later);
      const chunks = [...first, ...later].filter((p) => p.kind === 'chunk');
      const mean = new Float32Array(SPACE.dim);
      for (const p of chunks) p.vector.forEach((x, i) => (mean[i]! += x / chunks.length));
      const about = (v: Float32Array) => {
        const d = v.map((x, i) => x - mean[i]!);
        const n = Math.hypot(...d);
        return d.map((x) => x / n);
      };
      const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
      for (const s of [store, await reopen()]) {
        for (const q of [first[3]!, later[5]!, later[30]!]) {
          const found = await s.search(SPACE, { vector: q.vector }, 'chunk', 10);
          assert.ok(Math.abs(dot(found.query, found.query) - 1) < 1e-4, 'the query as compared is unit length');
          assert.ok(dot(found.query, about(q.vector)) > 0.99, `the query is centred on the catalog's mean: ${dot(found.query, about(q.vector))}`);
          const compared = await s.compared(SPACE, found.hits);
          found.hits.forEach((h, i) => {
            const stored = chunks.find((p) => p.fpId === h.fpId && p.startSeconds === h.startSeconds)!;
            assert.ok(Math.abs(h.cosine - dot(about(q.vector), about(stored.vector))) < 0.05, `cosine ${h.cosine} about the catalog's mean`);
            assert.ok(Math.abs(dot(compared[i]!, found.query) - h.cosine) < 0.01, "a hit's vector is the one compared");
          });
          // A centred query (an expanded one) is taken as it is.
          const again = await s.search(SPACE, { vector: found.query, centred: true }, 'chunk', 10);
          assert.deepEqual(
            again.hits.map((h) => h.fpId),
            found.hits.map((h) => h.fpId),
          );
        }
      }
      await store.clear();
    });

    test('vectors of another model are refused with the command that re-embeds; an emptied store takes any', async () => {
      const { store, reopen } = await b.create();
      const r = rng(4);
      await store.add(SPACE, trackPoints(1, 2, r));
      for (const s of [store, await reopen()]) {
        for (const attempt of [() => s.add(OTHER, trackPoints(2, 1, r)), () => s.search(OTHER, { vector: randomVector(r) }, 'track', 3)]) {
          await assert.rejects(
            attempt(),
            (e: unknown) => isAppError(e, 'INDEX_MISMATCH') && /rebuild-index --vibe/.test(e.message) && /other-model/.test(e.message),
          );
        }
      }
      await store.removeTracks([1]);
      await store.add(OTHER, trackPoints(3, 1, r));
      assert.deepEqual(await store.space(), OTHER);
      await store.clear();
      assert.equal(await store.space(), undefined);
    });
  });
}

test('usearch: a writer that died before committing leaves stray files and its lock, which the next write clears', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-vectors-'));
  const store = UsearchStore.open(dir);
  const r = rng(5);
  await store.add(SPACE, trackPoints(1, 3, r));
  const vibe = path.join(dir, 'vibe');
  // What a process killed mid-write leaves: the next generation's files half written, its lock.
  await writeFile(path.join(vibe, 'tracks-2.usearch'), 'partial');
  await writeFile(path.join(vibe, 'keys-2.bin'), 'partial');
  await writeFile(path.join(vibe, 'write.lock'), '999999999');
  const restarted = UsearchStore.open(dir);
  assert.deepEqual(await restarted.count(), { track: 1, chunk: 3 });
  await restarted.add(SPACE, trackPoints(2, 1, r));
  assert.deepEqual((await readdir(vibe)).sort(), ['centres-2.bin', 'chunks-2.usearch', 'keys-2.bin', 'manifest.json', 'tracks-2.usearch', 'vectors-2.bin']);
  // The first handle sees the other's generation.
  assert.deepEqual((await store.trackNumbers()).sort(), [1, 2]);
  assert.deepEqual(await store.count(), { track: 2, chunk: 4 });
});
