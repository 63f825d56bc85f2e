// Neighbourhood re-ranking measured by bench:vibe, on the plain unit vectors the store holds and
// on other vector spaces (vibe-layers.ts gives the pooling layer's): methods that use the
// catalog's own structure, never its labels (labels only score).
// - average query expansion (alpha-QE): rank, then rank again with the query plus its k nearest
//   catalog hits, each weighted by max(similarity, 0)^alpha;
// - database-side augmentation (DBA): every catalog vector replaced by itself plus its k nearest
//   catalog neighbours (weighted the same way), fitted on the catalog without the query's track;
// - both: DBA, then QE on the augmented catalog;
// - shared-neighbour re-ranking (after k-reciprocal re-ranking): a track scores
//   (1 - lambda) * cosine + lambda * Jaccard(query and its k nearest, track and its k nearest),
//   the track's neighbours taken among track vectors without the query's track.
// Whole-track queries compare track vectors; a chunk query (the middle chunk) ranks other
// tracks by their closest chunk, as clip search and live windows do, and its expansion adds the
// closest chunk of each of its k nearest tracks (what a store search returns). For chunk DBA a
// chunk's neighbours are the closest chunks of its k nearest other tracks, so that a track's
// neighbouring chunks do not simply smooth it.
import { pairedText } from './stats.js';
import type { CachedTrack } from './vibe-cache.js';

type Vec = Float64Array;

function unit(v: Vec): Vec {
  let n = 0;
  for (const x of v) n += x * x;
  const s = n > 0 ? 1 / Math.sqrt(n) : 0;
  return v.map((x) => x * s);
}

function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** v plus each neighbour weighted by max(s, 0)^alpha, unit length. */
function augment(v: Vec, neighbours: { s: number; v: Vec }[], alpha: number): Vec {
  const out = Float64Array.from(v);
  for (const n of neighbours) {
    const w = Math.max(n.s, 0) ** alpha;
    for (let i = 0; i < out.length; i++) out[i]! += w * n.v[i]!;
  }
  return unit(out);
}

/** A track's best chunk for a query: its similarity and the chunk. */
interface Hit {
  j: number;
  s: number;
  v: Vec;
}

function precision(labels: string[], q: number, ranked: Hit[]): number {
  return ranked.slice(0, 10).filter((h) => labels[h.j] === labels[q]).length / 10;
}

const byScore = (a: Hit, b: Hit) => b.s - a.s;

export interface RerankRow {
  method: string;
  whole: number;
  chunk: number;
  /** Per query, for paired comparisons. */
  byQuery: { whole: number[]; chunk: number[] };
}

/** The vectors ranked: each track's track vector and chunk vectors (made unit length here). */
export type Space = (tracks: CachedTrack[]) => { tracks: ArrayLike<number>[]; chunks: ArrayLike<number>[][] };
export const plainSpace: Space = (tracks) => ({ tracks: tracks.map((t) => t.track.vector), chunks: tracks.map((t) => t.chunks.map((c) => c.vector)) });

export interface Sweep {
  k: number[];
  alpha: number[];
  /** Whether to run DBA (and DBA + QE) at every k and alpha. */
  dba: boolean;
  sharedK: number[];
  lambda: number[];
}
export const SWEEP: Sweep = { k: [1, 2, 3, 5, 10], alpha: [0, 3], dba: true, sharedK: [5, 10, 20], lambda: [0.1, 0.3] };
/** Query expansion at the small k that did best on the plain vectors, for wider vectors (DBA's cost grows with the width). */
export const QE_SWEEP: Sweep = { k: [1, 2, 3], alpha: [0, 3], dba: false, sharedK: [], lambda: [] };

export function evaluateReranking(tracks: CachedTrack[], space: Space = plainSpace, sweep: Sweep = SWEEP): RerankRow[] {
  const labels = tracks.map((t) => t.pkg);
  const n = tracks.length;
  const vectors = space(tracks);
  const trackVecs = vectors.tracks.map((v) => unit(Float64Array.from(v)));
  const chunkVecs = vectors.chunks.map((cs) => cs.map((c) => unit(Float64Array.from(c))));
  const queries = chunkVecs.map((cs) => cs[Math.floor(cs.length / 2)]!);

  // Whole tracks: every track's other tracks by cosine, best first.
  const trackRank = trackVecs.map((a, i) =>
    trackVecs
      .map((b, j) => ({ j, s: dot(a, b), v: b }))
      .filter((h) => h.j !== i)
      .sort(byScore),
  );
  // Chunks: for every chunk, the closest chunk of each other track, best first (for chunk DBA
  // only: chunks x chunks is the costliest part).
  const chunkRank = sweep.dba ? chunkVecs.map((cs, i) => cs.map((c) => closestChunks(c, chunkVecs, i, 11))) : [];

  /** Other tracks ranked for a query vector by their closest chunk in `catalog`, skipping `self`. */
  const rankChunks = (v: Vec, catalog: Vec[][], self: number) => closestChunks(v, catalog, self, n);

  const rows: RerankRow[] = [];
  const perQuery = (f: (q: number) => number) => Array.from({ length: n }, (_, q) => f(q));
  const row = (method: string, whole: number[], chunk: number[]): RerankRow => ({ method, whole: mean(whole), chunk: mean(chunk), byQuery: { whole, chunk } });

  rows.push(
    row(
      'cosine, no re-ranking',
      perQuery((q) => precision(labels, q, trackRank[q]!)),
      perQuery((q) => precision(labels, q, rankChunks(queries[q]!, chunkVecs, q))),
    ),
  );

  for (const alpha of sweep.alpha) {
    for (const k of sweep.k) {
      rows.push(
        row(
          `QE, k=${k}, alpha=${alpha}`,
          perQuery((q) => precision(labels, q, rankTracks(augment(trackVecs[q]!, trackRank[q]!.slice(0, k), alpha), trackVecs, q))),
          perQuery((q) => precision(labels, q, rankChunks(augment(queries[q]!, rankChunks(queries[q]!, chunkVecs, q).slice(0, k), alpha), chunkVecs, q))),
        ),
      );
    }
  }

  // DBA with the query's track left out of every neighbour list: augmented once, then per query
  // only the vectors whose neighbours included the query's track are augmented again.
  const without = (list: Hit[], q: number, k: number) => list.filter((h) => h.j !== q).slice(0, k);
  const touches = (list: Hit[], q: number, k: number) => list.slice(0, k).some((h) => h.j === q);
  for (const alpha of sweep.dba ? sweep.alpha : []) {
    for (const k of sweep.k) {
      const allTracks = trackVecs.map((v, j) => augment(v, trackRank[j]!.slice(0, k), alpha));
      const allChunks = chunkVecs.map((cs, j) => cs.map((c, ci) => augment(c, chunkRank[j]![ci]!.slice(0, k), alpha)));
      const dbaTracks = (q: number) =>
        allTracks.map((v, j) => (touches(trackRank[j]!, q, k) ? augment(trackVecs[j]!, without(trackRank[j]!, q, k), alpha) : v));
      const dbaChunks = (q: number) =>
        allChunks.map((cs, j) =>
          cs.map((v, ci) => (touches(chunkRank[j]![ci]!, q, k) ? augment(chunkVecs[j]![ci]!, without(chunkRank[j]![ci]!, q, k), alpha) : v)),
        );
      const dba = { whole: [] as number[], chunk: [] as number[] };
      const both = { whole: [] as number[], chunk: [] as number[] };
      for (let q = 0; q < n; q++) {
        const tc = dbaTracks(q);
        const first = rankTracks(trackVecs[q]!, tc, q);
        dba.whole.push(precision(labels, q, first));
        both.whole.push(precision(labels, q, rankTracks(augment(trackVecs[q]!, first.slice(0, k), alpha), tc, q)));
        const cc = dbaChunks(q);
        const firstC = rankChunks(queries[q]!, cc, q);
        dba.chunk.push(precision(labels, q, firstC));
        both.chunk.push(precision(labels, q, rankChunks(augment(queries[q]!, firstC.slice(0, k), alpha), cc, q)));
      }
      rows.push(row(`DBA, k=${k}, alpha=${alpha}`, dba.whole, dba.chunk));
      rows.push(row(`DBA + QE, k=${k}, alpha=${alpha}`, both.whole, both.chunk));
    }
  }

  for (const lambda of sweep.lambda) {
    for (const k of sweep.sharedK) {
      /** Re-scores a first ranking of every other track; the query is node -1. */
      const shared = (q: number, first: Hit[]): Hit[] => {
        const mine = new Set([-1, ...first.slice(0, k).map((h) => h.j)]);
        return first
          .map((h) => {
            const theirs = new Set([h.j, ...without(trackRank[h.j]!, q, k).map((x) => x.j)]);
            let common = 0;
            for (const x of theirs) if (mine.has(x)) common++;
            return { ...h, s: (1 - lambda) * h.s + (lambda * common) / (mine.size + theirs.size - common) };
          })
          .sort(byScore);
      };
      rows.push(
        row(
          `shared neighbours, k=${k}, lambda=${lambda}`,
          perQuery((q) => precision(labels, q, shared(q, trackRank[q]!))),
          perQuery((q) => precision(labels, q, shared(q, rankChunks(queries[q]!, chunkVecs, q)))),
        ),
      );
    }
  }
  return rows;
}

function rankTracks(v: Vec, catalog: Vec[], self: number): Hit[] {
  return catalog
    .map((b, j) => ({ j, s: dot(v, b), v: b }))
    .filter((h) => h.j !== self)
    .sort(byScore);
}

/** The closest chunk of each track but `self`, best `limit` first. */
function closestChunks(v: Vec, catalog: Vec[][], self: number, limit: number): Hit[] {
  const hits: Hit[] = [];
  catalog.forEach((cs, j) => {
    if (j === self) return;
    let best = -Infinity;
    let at = cs[0]!;
    for (const c of cs) {
      const s = dot(v, c);
      if (s > best) {
        best = s;
        at = c;
      }
    }
    hits.push({ j, s: best, v: at });
  });
  return hits.sort(byScore).slice(0, limit);
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

/** A table of rows, each against `plain` (the plain vectors without re-ranking): mean per-query difference ± paired standard error. */
export function printReranking(title: string, rows: RerankRow[], plain: RerankRow = rows[0]!): void {
  console.log(
    `\nNeighbourhood re-ranking ${title}, same-package precision@10 (query track excluded; chunk queries rank tracks by their closest chunk); vs plain: ` +
      `mean per-query difference ± its paired standard error:\n`,
  );
  console.log('| method | whole track | vs plain | 10 s chunk -> closest chunk | vs plain |');
  console.log('|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.method} | ${r.whole.toFixed(3)} | ${pairedText(r.byQuery.whole, plain.byQuery.whole)} | ${r.chunk.toFixed(3)} | ` +
        `${pairedText(r.byQuery.chunk, plain.byQuery.chunk)} |`,
    );
}
