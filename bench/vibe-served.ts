// bench:vibe's measure of the lane as it runs: the lane's own vectors put into the real embedded
// store track by track in a shuffled order (as ingest adds them, so the store re-centres as the
// catalog grows), then ranked by the lane's own search (centred cosine, query expansion) with
// the query's track left out: whole tracks by their track vectors, and each track's middle 10 s
// chunk against the other tracks' closest chunks. The cache holds the analysis model's outputs;
// the lane's vector is computed from them (vibe-layers.ts, laneVector).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { nearestTracks } from '../src/vibe/lane.js';
import { MUSICNN_MODEL } from '../src/vibe/models.js';
import { UsearchStore } from '../src/vibe/store/usearch-store.js';
import type { VectorKind, VectorPoint, VectorSpace } from '../src/vibe/store/vector-store.js';
import { rng } from '../tools/corpus.js';
import { median, pairedText, quantile } from './stats.js';
import type { CachedItem, CachedTrack } from './vibe-cache.js';
import type { EvalRow } from './vibe-eval.js';

export interface ServedStore {
  store: UsearchStore;
  space: VectorSpace;
  /** Wall time of each track's write, ms. */
  writeMs: number[];
  /** The longest the event loop was held while the store was filled, ms. */
  longestStallMs: number;
  close(): Promise<void>;
}

/** A store under a temporary data dir filled with every cached track, one write per track. */
export async function servedStore(tracks: CachedTrack[], laneVector: (x: CachedItem) => Float32Array): Promise<ServedStore> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-vibe-bench-'));
  const store = UsearchStore.open(dir);
  const space: VectorSpace = { id: MUSICNN_MODEL.id, dim: MUSICNN_MODEL.dim };
  const r = rng(23);
  const order = tracks.map((_, i) => ({ i, k: r() })).sort((a, b) => a.k - b.k);
  const writeMs: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  for (const { i } of order) {
    const t = tracks[i]!;
    const trackId = `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`;
    const points: VectorPoint[] = [
      { fpId: i + 1, trackId, kind: 'track', startSeconds: 0, vector: laneVector(t.track) },
      ...t.chunks.map((c) => ({ fpId: i + 1, trackId, kind: 'chunk' as const, startSeconds: c.start, vector: laneVector(c) })),
    ];
    const started = performance.now();
    await store.add(space, points);
    writeMs.push(performance.now() - started);
  }
  loop.disable();
  return {
    store,
    space,
    writeMs,
    longestStallMs: loop.max / 1e6,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ServedRow {
  whole: number[];
  chunk: number[];
  searchMs: number[];
}

export async function evaluateServed(tracks: CachedTrack[], served: ServedStore, laneVector: (x: CachedItem) => Float32Array): Promise<ServedRow> {
  const labels = tracks.map((t) => t.pkg);
  const searchMs: number[] = [];
  const precision = async (q: number, vector: Float32Array, kind: VectorKind) => {
    const started = performance.now();
    const hits = await nearestTracks(served.store, served.space, vector, { kind, k: 10, without: q + 1 });
    searchMs.push(performance.now() - started);
    return hits.filter((h) => labels[h.fpId - 1] === labels[q]).length / 10;
  };
  const whole: number[] = [];
  const chunk: number[] = [];
  for (let q = 0; q < tracks.length; q++) {
    const t = tracks[q]!;
    whole.push(await precision(q, laneVector(t.track), 'track'));
    chunk.push(await precision(q, laneVector(t.chunks[Math.floor(t.chunks.length / 2)]!), 'chunk'));
  }
  return { whole, chunk, searchMs };
}

export function printServed(row: ServedRow, plain: EvalRow, served: ServedStore): void {
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const total = served.writeMs.reduce((s, x) => s + x, 0);
  console.log(
    `\nThe lane as it runs (${MUSICNN_MODEL.id}, ${MUSICNN_MODEL.dim}-d, the real embedded store filled one track at a time, its own search): ` +
      `same-package precision@10, vs the plain cosine paired per query:\n`,
  );
  console.log('| vectors | whole track | vs plain | 10 s chunk -> closest chunk | vs plain |');
  console.log('|---|---|---|---|---|');
  console.log(`| ${plain.method} | ${plain.whole.toFixed(3)} | +0.000 ± 0.000 | ${plain.chunkToChunks.toFixed(3)} | +0.000 ± 0.000 |`);
  console.log(
    `| **the lane: pooling layer about the catalog's centre, query expanded (in use)** | **${mean(row.whole).toFixed(3)}** | ` +
      `${pairedText(row.whole, plain.byQuery.whole)} | **${mean(row.chunk).toFixed(3)}** | ${pairedText(row.chunk, plain.byQuery.chunkToChunks)} |`,
  );
  console.log(
    `\nstore writes: ${served.writeMs.length} tracks in ${(total / 1000).toFixed(1)} s (median ${median(served.writeMs).toFixed(0)} ms, p95 ` +
      `${quantile(served.writeMs, 0.95).toFixed(0)} ms, max ${Math.max(...served.writeMs).toFixed(0)} ms a track: the slow ones re-centre; the event loop ` +
      `held at most ${served.longestStallMs.toFixed(0)} ms at a time); search with expansion: median ${median(row.searchMs).toFixed(1)} ms, p95 ` +
      `${quantile(row.searchMs, 0.95).toFixed(1)} ms`,
  );
}
