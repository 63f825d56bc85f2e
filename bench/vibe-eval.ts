// Same-package precision@10 of bench:vibe for each way of turning model outputs into vectors.
// Whole-track queries compare track vectors; a chunk query (the middle 10 s chunk of each track)
// is compared with other tracks' track vectors and with their closest chunk (what the search
// path does). Statistics a method fits (means, deviations) are fitted on the catalog itself, as
// the store would fit them.
import type { CachedItem, CachedTrack } from './vibe-cache.js';

type Vec = Float64Array;
type Item = CachedItem;

/** A method: fitted on a set of items, then maps an item to the vector compared by cosine. */
export type Method = (fit: Item[]) => (x: Item) => Vec;
/** What a method compares: some numbers of an item. */
type Feature = (x: Item) => ArrayLike<number>;

const logit = (p: number) => Math.log(Math.max(p, 1e-6) / Math.max(1 - p, 1e-6));

function stats(rows: Vec[]): { mean: Vec; std: Vec } {
  const d = rows[0]!.length;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (const r of rows) {
    for (let i = 0; i < d; i++) {
      mean[i]! += r[i]!;
      sq[i]! += r[i]! * r[i]!;
    }
  }
  const std = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    mean[i]! /= rows.length;
    std[i] = Math.sqrt(Math.max(1e-12, sq[i]! / rows.length - mean[i]! ** 2));
  }
  return { mean, std };
}

function unit(v: Vec): Vec {
  let n = 0;
  for (const x of v) n += x * x;
  const s = n > 0 ? 1 / Math.sqrt(n) : 0;
  return v.map((x) => x * s);
}

export const raw =
  (f: Feature): Method =>
  () =>
  (x) =>
    Float64Array.from(f(x));
export const centred =
  (f: Feature): Method =>
  (fit) => {
    const { mean } = stats(fit.map((x) => Float64Array.from(f(x))));
    return (x) => Float64Array.from(f(x), (v, i) => v - mean[i]!);
  };
export const standardised =
  (f: Feature): Method =>
  (fit) => {
    const { mean, std } = stats(fit.map((x) => Float64Array.from(f(x))));
    return (x) => Float64Array.from(f(x), (v, i) => (v - mean[i]!) / std[i]!);
  };
/** The parts side by side, each made unit length first so that each weighs the same. */
export const concat =
  (...parts: Method[]): Method =>
  (fit) => {
    const fitted = parts.map((p) => p(fit));
    return (x) => {
      const us = fitted.map((f) => unit(f(x)));
      const out = new Float64Array(us.reduce((n, u) => n + u.length, 0));
      let at = 0;
      for (const u of us) {
        out.set(u, at);
        at += u.length;
      }
      return out;
    };
  };

/** PCA whitening fitted on the set: decorrelated, each component scaled to unit variance (plus a floor). */
const whitened =
  (f: Feature, floor: number): Method =>
  (fit) => {
    const rows = fit.map((x) => Float64Array.from(f(x)));
    const { mean } = stats(rows);
    const d = mean.length;
    const cov = new Float64Array(d * d);
    for (const r of rows) {
      for (let i = 0; i < d; i++) {
        const a = r[i]! - mean[i]!;
        for (let j = i; j < d; j++) cov[i * d + j]! += a * (r[j]! - mean[j]!);
      }
    }
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++) cov[j * d + i] = cov[i * d + j]! /= rows.length;
    const { values, vectors } = symmetricEigen(cov, d);
    const avg = values.reduce((s, v) => s + Math.max(v, 0), 0) / d;
    const scale = values.map((v) => 1 / Math.sqrt(Math.max(v, 0) + floor * avg));
    return (x) => {
      const c = Float64Array.from(f(x), (v, i) => v - mean[i]!);
      const out = new Float64Array(d);
      for (let k = 0; k < d; k++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += vectors[i * d + k]! * c[i]!;
        out[k] = s * scale[k]!;
      }
      return out;
    };
  };

/** Eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic Jacobi rotations. */
function symmetricEigen(m: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = m.slice();
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 12; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q]! ** 2;
    if (off < 1e-18) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (Math.abs(apq) < 1e-15) continue;
        const theta = (a[q * d + q]! - a[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p]!;
          const akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k]!;
          const aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: d }, (_, i) => a[i * d + i]!), vectors: v };
}

export const vec = (x: Item) => x.vector;
const tagLogits = (x: Item) => x.tags.map(logit);

/** The plain 200-d embedding by cosine: what every figure is compared with. */
export const PLAIN = 'plain mean of patches (cosine)';

export const METHODS: [string, Method][] = [
  ['MFCC mean/std, standardised (baseline)', standardised((x) => x.mfcc)],
  [PLAIN, raw(vec)],
  ['mean removed (catalog mean)', centred(vec)],
  ['standardised (catalog mean and deviation)', standardised(vec)],
  ['tag probabilities', raw((x) => x.tags)],
  ['tag logits, standardised', standardised(tagLogits)],
  ['standardised + tag logits standardised', concat(standardised(vec), standardised(tagLogits))],
  ['mean removed + tag logits standardised', concat(centred(vec), standardised(tagLogits))],
  ['rectified (max(x, 0))', raw((x) => x.vector.map((v) => Math.max(v, 0)))],
  ['PCA-whitened (floor 0.1 of the mean eigenvalue)', whitened(vec, 0.1)],
  ['PCA-whitened (floor 1)', whitened(vec, 1)],
];

function cos(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Precision@10 of each query's ranking: its scores against every other track. */
function precisionsAt10(labels: string[], score: (q: number, j: number) => number): number[] {
  return labels.map((_, q) => {
    const ranked = labels
      .map((_, j) => j)
      .filter((j) => j !== q)
      .map((j) => ({ j, s: score(q, j) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 10);
    return ranked.filter(({ j }) => labels[j] === labels[q]).length / 10;
  });
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const precisionAt10 = (labels: string[], score: (q: number, j: number) => number) => mean(precisionsAt10(labels, score));

export interface EvalRow {
  method: string;
  whole: number;
  /** Whole track as the mean and deviation of its chunk vectors, instead of its track vector. */
  wholePooled: number;
  chunkToTrack: number;
  chunkToChunks: number;
  /** The mean of the 3 closest chunks of each track. */
  chunkToTop3: number;
  /** Per query, for paired comparisons of methods: whole track and 10 s chunk -> closest chunk. */
  byQuery: { whole: number[]; chunkToChunks: number[] };
}

/** Random ranking: the expected share of same-package tracks among the others. */
export function randomRow(tracks: CachedTrack[]): EvalRow {
  const labels = tracks.map((t) => t.pkg);
  const n = tracks.length;
  const random = labels.reduce((s, l) => s + (labels.filter((x) => x === l).length - 1) / (n - 1), 0) / n;
  const byQuery = { whole: labels.map(() => random), chunkToChunks: labels.map(() => random) };
  return { method: 'random ranking (expected)', whole: random, wholePooled: random, chunkToTrack: random, chunkToChunks: random, chunkToTop3: random, byQuery };
}

export function evaluate(tracks: CachedTrack[], methods: [string, Method][] = METHODS): EvalRow[] {
  const labels = tracks.map((t) => t.pkg);
  const rows: EvalRow[] = [];
  const queryChunk = tracks.map((t) => t.chunks[Math.floor(t.chunks.length / 2)]!);
  const allChunks = tracks.flatMap((t) => t.chunks);
  for (const [name, method] of methods) {
    const onTracks = method(tracks.map((t) => t.track));
    const trackVecs = tracks.map((t) => unit(onTracks(t.track)));
    const wholeByQuery = precisionsAt10(labels, (q, j) => cos(trackVecs[q]!, trackVecs[j]!));
    // Chunk queries: statistics fitted on the catalog's chunks, which is what the store holds.
    const onChunks = method(allChunks);
    const chunkTrackVecs = tracks.map((t) => unit(onChunks(t.track)));
    const queries = queryChunk.map((c) => unit(onChunks(c)));
    const chunkVecs = tracks.map((t) => t.chunks.map((c) => unit(onChunks(c))));
    const chunkToTrack = precisionAt10(labels, (q, j) => cos(queries[q]!, chunkTrackVecs[j]!));
    const sims = queries.map((qv) => chunkVecs.map((cs) => cs.map((v) => cos(qv, v)).sort((a, b) => b - a)));
    const chunkToChunksByQuery = precisionsAt10(labels, (q, j) => sims[q]![j]![0]!);
    const chunkToTop3 = precisionAt10(labels, (q, j) => {
      const s = sims[q]![j]!.slice(0, 3);
      return s.reduce((a, b) => a + b, 0) / s.length;
    });
    const pooled = chunkVecs.map((cs) => unit(meanAndDeviation(cs)));
    const wholePooled = precisionAt10(labels, (q, j) => cos(pooled[q]!, pooled[j]!));
    rows.push({
      method: name,
      whole: mean(wholeByQuery),
      wholePooled,
      chunkToTrack,
      chunkToChunks: mean(chunkToChunksByQuery),
      chunkToTop3,
      byQuery: { whole: wholeByQuery, chunkToChunks: chunkToChunksByQuery },
    });
  }
  return rows;
}

function meanAndDeviation(vs: Vec[]): Vec {
  const { mean, std } = stats(vs);
  const out = new Float64Array(mean.length * 2);
  out.set(unit(mean));
  out.set(unit(std), mean.length);
  return out;
}

export function printEvaluation(rows: EvalRow[]): void {
  console.log('\nSame-package precision@10 (query track excluded):\n');
  console.log(
    '| vectors | whole track: track vector | whole track: chunk mean+std | 10 s chunk -> track vector | 10 s chunk -> closest chunk | ' +
      '10 s chunk -> 3 closest chunks |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.method} | ${[r.whole, r.wholePooled, r.chunkToTrack, r.chunkToChunks, r.chunkToTop3].map((x) => x.toFixed(3)).join(' | ')} |`);
}
