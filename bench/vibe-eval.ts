// Same-package precision@10 of bench:vibe for each way of turning model outputs into vectors.
// Whole-track queries compare track vectors; a chunk query (the middle 10 s chunk of each track)
// is compared with other tracks' track vectors and with their closest chunk (what the search
// path does). Statistics a method fits (means, deviations) are fitted on the catalog itself, as
// the store would fit them.
import type { CachedTrack } from './vibe-cache.js';

type Vec = Float64Array;
interface Item {
  vector: number[];
  tags: number[];
  mfcc: number[];
}

/** A method: fitted on a set of items, then maps an item to the vector compared by cosine. */
type Method = (fit: Item[]) => (x: Item) => Vec;

const logit = (p: number) => Math.log(Math.max(p, 1e-6) / Math.max(1 - p, 1e-6));

function stats(rows: Vec[]): { mean: Vec; std: Vec } {
  const d = rows[0]!.length;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (const r of rows) for (let i = 0; i < d; i++) (mean[i]! += r[i]!), (sq[i]! += r[i]! * r[i]!);
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

const raw = (f: (x: Item) => number[]): Method => () => (x) => Float64Array.from(f(x));
const centred = (f: (x: Item) => number[]): Method => (fit) => {
  const { mean } = stats(fit.map((x) => Float64Array.from(f(x))));
  return (x) => Float64Array.from(f(x), (v, i) => v - mean[i]!);
};
const standardised = (f: (x: Item) => number[]): Method => (fit) => {
  const { mean, std } = stats(fit.map((x) => Float64Array.from(f(x))));
  return (x) => Float64Array.from(f(x), (v, i) => (v - mean[i]!) / std[i]!);
};
const concat = (a: Method, b: Method, wb = 1): Method => (fit) => {
  const fa = a(fit);
  const fb = b(fit);
  return (x) => {
    const u = unit(fa(x));
    const w = unit(fb(x)).map((v) => v * wb);
    const out = new Float64Array(u.length + w.length);
    out.set(u);
    out.set(w, u.length);
    return out;
  };
};

const vec = (x: Item) => x.vector;
const tagLogits = (x: Item) => x.tags.map(logit);

export const METHODS: [string, Method][] = [
  ['MFCC mean/std, standardised (baseline)', standardised((x) => x.mfcc)],
  ['plain mean of patches (cosine)', raw(vec)],
  ['mean removed (catalog mean)', centred(vec)],
  ['standardised (catalog mean and deviation)', standardised(vec)],
  ['tag probabilities', raw((x) => x.tags)],
  ['tag logits, standardised', standardised(tagLogits)],
  ['standardised + tag logits standardised', concat(standardised(vec), standardised(tagLogits))],
  ['mean removed + tag logits standardised', concat(centred(vec), standardised(tagLogits))],
];

function cos(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Precision@10 of rankings: for each query, scores against every other track. */
function precisionAt10(labels: string[], score: (q: number, j: number) => number): number {
  let total = 0;
  for (let q = 0; q < labels.length; q++) {
    const ranked = labels
      .map((_, j) => j)
      .filter((j) => j !== q)
      .map((j) => ({ j, s: score(q, j) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 10);
    total += ranked.filter(({ j }) => labels[j] === labels[q]).length / 10;
  }
  return total / labels.length;
}

export interface EvalRow {
  method: string;
  whole: number;
  chunkToTrack: number;
  chunkToChunks: number;
}

export function evaluate(tracks: CachedTrack[]): EvalRow[] {
  const labels = tracks.map((t) => t.pkg);
  const rows: EvalRow[] = [];
  // Random ranking: the expected share of same-package tracks among the others.
  const n = tracks.length;
  const random = labels.reduce((s, l) => s + (labels.filter((x) => x === l).length - 1) / (n - 1), 0) / n;
  rows.push({ method: 'random ranking (expected)', whole: random, chunkToTrack: random, chunkToChunks: random });
  const queryChunk = tracks.map((t) => t.chunks[Math.floor(t.chunks.length / 2)]!);
  const allChunks = tracks.flatMap((t) => t.chunks);
  for (const [name, method] of METHODS) {
    const onTracks = method(tracks.map((t) => t.track));
    const trackVecs = tracks.map((t) => unit(onTracks(t.track)));
    const whole = precisionAt10(labels, (q, j) => cos(trackVecs[q]!, trackVecs[j]!));
    // Chunk queries: statistics fitted on the catalog's chunks, which is what the store holds.
    const onChunks = method(allChunks);
    const chunkTrackVecs = tracks.map((t) => unit(onChunks(t.track)));
    const queries = queryChunk.map((c) => unit(onChunks(c)));
    const chunkVecs = tracks.map((t) => t.chunks.map((c) => unit(onChunks(c))));
    const chunkToTrack = precisionAt10(labels, (q, j) => cos(queries[q]!, chunkTrackVecs[j]!));
    const chunkToChunks = precisionAt10(labels, (q, j) => Math.max(...chunkVecs[j]!.map((v) => cos(queries[q]!, v))));
    rows.push({ method: name, whole, chunkToTrack, chunkToChunks });
  }
  return rows;
}

export function printEvaluation(rows: EvalRow[]): void {
  console.log('\n| vectors | whole track P@10 | 10 s chunk -> track vectors P@10 | 10 s chunk -> closest chunk P@10 |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.method} | ${r.whole.toFixed(3)} | ${r.chunkToTrack.toFixed(3)} | ${r.chunkToChunks.toFixed(3)} |`);
}
