// Matching: each posting found for a query hash votes for (track, offset), where offset is the
// catalog frame minus the query frame. A true match piles votes on one offset; chance postings
// scatter. Votes accumulate, so a live session adds new hashes' postings as they arrive. The
// candidates the votes give are then verified by their sketches (verify.ts).
import { FRAME_SECONDS, pitchSample } from './fingerprint.js';
import type { QueryPostings } from './fingerprint-index.js';

/** What a candidate needs to be a match. */
export interface Acceptance {
  /**
   * Fewest distinct hashes among the aligned votes. Distinct, because two unrelated pieces with
   * the same tempo and similar drums repeat one hash on every beat and pile its votes on
   * periodic offsets.
   */
  minAligned: number;
  /** Largest share of sketch bits that may differ from the track's at the candidate's offset. */
  maxBitErrorRate: number;
}

export interface MatcherConfig extends Acceptance {
  /** Votes are counted in bins of this many frames of offset, three bins to a window ... */
  binFrames: number;
  /** ... and a window's postings are fitted with a line, those within this many frames of it aligned. */
  toleranceFrames: number;
  /** The line's slope, the query's time scale, may differ from 1 by this much (a 7% faster or slower recording). */
  maxTimeScaleChange: number;
  /** Fewest distinct query frames among the aligned votes: a burst at one instant is not a match. */
  minAnchors: number;
}

// Calibrated by bench/accuracy.ts on its tuning conditions and tracks and on every 5 s excerpt
// of the tracks it keeps out of the catalog (docs/benchmarks.md).
const ACCEPTANCE: Acceptance = { minAligned: 5, maxBitErrorRate: 0.38 };
export const DEFAULT_MATCHER: MatcherConfig = { binFrames: 8, toleranceFrames: 1.5, maxTimeScaleChange: 0.07, minAnchors: 5, ...ACCEPTANCE };

/** A track and offset that the votes point to. */
export interface Placement {
  fpId: number;
  /**
   * Where in the track the query starts, in frames (not rounded): the track frame of query frame
   * j is offsetFrames + timeScale * j.
   */
  offsetFrames: number;
  offsetSeconds: number;
  /** Track time per query time: 1.05 when the recording plays 5% fast. */
  timeScale: number;
  /** How far the recording is transposed from the track, in cents (+84 when it plays 5% fast). */
  pitchShiftCents: number;
  alignedHashes: number;
  /** Query frame of the earliest aligned hash: where the matched audio begins in the query. */
  startFrame: number;
}

/** A track's best-aligned offset. */
export interface Candidate extends Placement {
  /**
   * The track's other offsets with enough aligned hashes, fewer than this one's. A passage that
   * recurs with variations (a repeat played on other instruments) can align more hashes with the
   * clip than the clip's own place does; verification places the match where the sketch agrees.
   */
  elsewhere: Placement[];
}

/** A verified placement. */
export interface Match extends Placement {
  /** Share of sketch bits that differ from the track's at the offset (verify.ts). */
  bitErrorRate: number;
  /** 0.5 at the acceptance's bit error rate, towards 1 as it falls to none. */
  confidence: number;
}

/** Tracks re-scored by distinct hashes after the raw-vote shortlist ... */
const CANDIDATES = 10;
/** ... at this many offsets each. */
const OFFSETS_PER_TRACK = 3;

/** Votes of a window of offsets around one offset. */
/** Votes of three offset bins around one (binFrames each). */
interface Window {
  track: number;
  bin: number;
  votes: number;
}

/**
 * Votes per (track, offset) in an open-addressing hash table of typed arrays: a query adds tens of
 * thousands of postings, and a Map of boxed keys spent most of the query's time. A slot whose count
 * falls to zero stays occupied (no tombstones to handle) until the next rehash drops it.
 */
class Counts {
  /** track + 1 per slot; 0 marks an empty slot. */
  private tracks = new Int32Array(1024);
  private offsets = new Int32Array(1024);
  private counts = new Int32Array(1024);
  private mask = 1023;
  private occupied = 0;

  get(track: number, offset: number): number {
    const i = this.find(track, offset);
    return this.tracks[i] ? this.counts[i]! : 0;
  }

  /** Adds delta to a count; returns the new count. */
  bump(track: number, offset: number, delta: number): number {
    let i = this.find(track, offset);
    if (!this.tracks[i]) {
      if ((this.occupied + 1) * 2 > this.mask) {
        this.rehash();
        i = this.find(track, offset);
      }
      this.tracks[i] = track + 1;
      this.offsets[i] = offset;
      this.occupied++;
    }
    this.counts[i]! += delta;
    return this.counts[i]!;
  }

  /** Calls fn for every (track, offset) with at least min votes. */
  forEachAtLeast(min: number, fn: (track: number, offset: number, votes: number) => void): void {
    const { tracks, offsets, counts } = this;
    for (let i = 0; i <= this.mask; i++) if (tracks[i] && counts[i]! >= min) fn(tracks[i]! - 1, offsets[i]!, counts[i]!);
  }

  private find(track: number, offset: number): number {
    const t = track + 1;
    let i = (Math.imul(t, 0x9e3779b1) ^ Math.imul(offset, 0x85ebca77)) & this.mask;
    while (this.tracks[i] && (this.tracks[i] !== t || this.offsets[i] !== offset)) i = (i + 1) & this.mask;
    return i;
  }

  /** Drops zero counts, and doubles the table when the live ones would fill a quarter of it. */
  private rehash(): void {
    const { tracks, offsets, counts } = this;
    let live = 0;
    for (let i = 0; i < counts.length; i++) if (tracks[i] && counts[i]) live++;
    let size = counts.length;
    while ((live + 1) * 4 > size) size *= 2;
    this.tracks = new Int32Array(size);
    this.offsets = new Int32Array(size);
    this.counts = new Int32Array(size);
    this.mask = size - 1;
    this.occupied = 0;
    for (let i = 0; i < counts.length; i++) {
      if (!tracks[i] || !counts[i]) continue;
      const j = this.find(tracks[i]! - 1, offsets[i]!);
      this.tracks[j] = tracks[i]!;
      this.offsets[j] = offsets[i]!;
      this.counts[j] = counts[i]!;
      this.occupied++;
    }
  }
}

export class VoteTable {
  private readonly votes = new Counts();
  private track = new Uint32Array(0);
  private offset = new Int32Array(0);
  private queryTime = new Uint32Array(0);
  private hash = new Uint32Array(0);
  private pitch = new Float32Array(0);
  /** Postings [first, n) are live; those before were dropped by dropBefore. */
  private first = 0;
  private n = 0;

  constructor(private readonly cfg: MatcherConfig = DEFAULT_MATCHER) {}

  add(p: QueryPostings): void {
    this.reserve(p.length);
    this.track.set(p.track.subarray(0, p.length), this.n);
    this.offset.set(p.offset.subarray(0, p.length), this.n);
    this.queryTime.set(p.queryTime.subarray(0, p.length), this.n);
    this.hash.set(p.hash.subarray(0, p.length), this.n);
    for (let i = 0; i < p.length; i++) this.pitch[this.n + i] = pitchSample(p.hash[i]!, p.queryCents[i]!);
    this.n += p.length;
    const bin = this.cfg.binFrames;
    for (let i = 0; i < p.length; i++) this.votes.bump(p.track[i]!, Math.floor(p.offset[i]! / bin), 1);
  }

  /**
   * Forgets the votes of postings whose query frame is before `frame`, so that a long stream is
   * judged on its recent audio. Each lookup's postings come after the previous lookup's, later
   * in time (a live session looks up a fraction of a second at a time); the scan stops at the
   * first posting that is not before `frame`, so one out of order is dropped an evaluation late.
   */
  dropBefore(frame: number): void {
    while (this.first < this.n && this.queryTime[this.first]! < frame) {
      this.votes.bump(this.track[this.first]!, Math.floor(this.offset[this.first]! / this.cfg.binFrames), -1);
      this.first++;
    }
    if (this.first > 4096 && this.first * 2 > this.n) this.compact();
  }

  /**
   * The candidates with at least `minAligned` distinct aligned hashes, at most `max` tracks, the
   * best placement of each, most aligned first.
   */
  best(max: number, minAligned = this.cfg.minAligned): Candidate[] {
    const { binFrames: bin, maxTimeScaleChange: maxChange, minAnchors } = this.cfg;
    // A recording played at another speed drifts from one offset along the query: votes are
    // counted in wide bins, a window of three of them holds a 5 s query's drift at 7%, and the
    // windows with enough votes are then fitted with a line.
    const windows: Window[] = [];
    this.votes.forEachAtLeast(Math.max(1, Math.ceil(minAligned / 3)), (track, b) => {
      for (let centre = b - 1; centre <= b + 1; centre++) {
        const sum = this.votes.get(track, centre - 1) + this.votes.get(track, centre) + this.votes.get(track, centre + 1);
        if (sum >= minAligned) windows.push({ track, bin: centre, votes: sum });
      }
    });
    // Raw votes only shortlist, a few windows per track: a passage that recurs in a track, busier
    // the second time, can outvote the right place while matching fewer distinct hashes.
    windows.sort((a, b) => b.votes - a.votes);
    const perTrack = new Map<number, Window[]>();
    for (const w of windows) {
      const list = perTrack.get(w.track);
      if (!list) {
        if (perTrack.size < Math.max(max * 2, CANDIDATES)) perTrack.set(w.track, [w]);
      } else if (list.length < OFFSETS_PER_TRACK && list.every((o) => Math.abs(o.bin - w.bin) > 2)) {
        list.push(w);
      }
    }
    const cands = [...perTrack.values()].flat();
    if (cands.length === 0) return [];
    // A longer query drifts further: each window takes the postings of its track within that
    // reach of its centre, in one pass over the postings.
    let qLo = Infinity;
    let qHi = -Infinity;
    for (let i = this.first; i < this.n; i++) {
      qLo = Math.min(qLo, this.queryTime[i]!);
      qHi = Math.max(qHi, this.queryTime[i]!);
    }
    const reach = 1.5 * bin + maxChange * (qHi - qLo);
    const centre = Float64Array.from(cands, (c) => (c.bin + 0.5) * bin);
    const points = cands.map((): Points => ({ q: [], o: [], h: [], c: [] }));
    // Most postings are of tracks with no candidate: one lookup skips them.
    const ofTrack = new Map<number, number[]>();
    cands.forEach((c, k) => {
      const list = ofTrack.get(c.track);
      if (list) list.push(k);
      else ofTrack.set(c.track, [k]);
    });
    for (let i = this.first; i < this.n; i++) {
      const ks = ofTrack.get(this.track[i]!);
      if (!ks) continue;
      const o = this.offset[i]!;
      for (const c of ks) {
        if (Math.abs(o - centre[c]!) > reach) continue;
        const p = points[c]!;
        p.q.push(this.queryTime[i]!);
        p.o.push(o);
        p.h.push(this.hash[i]!);
        p.c.push(this.pitch[i]!);
      }
    }
    const perTrackFound = new Map<number, Placement[]>();
    cands.forEach((c, k) => {
      const found = fitLine(points[k]!, c.track, this.cfg);
      if (!found || found.alignedHashes < minAligned || found.anchors < minAnchors) return;
      const { anchors: _, ...placement } = found;
      const list = perTrackFound.get(c.track);
      if (list) list.push(placement);
      else perTrackFound.set(c.track, [placement]);
    });
    const out = [...perTrackFound.values()].map((found): Candidate => {
      found.sort((a, b) => b.alignedHashes - a.alignedHashes);
      // Two windows of one track can settle on the same line.
      const first = found[0]!;
      const others = found.slice(1).filter((p) => Math.abs(p.offsetFrames - first.offsetFrames) > 2 * this.cfg.toleranceFrames);
      return { ...first, elsewhere: others };
    });
    return out.sort((a, b) => b.alignedHashes - a.alignedHashes).slice(0, max);
  }

  private compact(): void {
    for (const a of [this.track, this.offset, this.queryTime, this.hash, this.pitch]) a.copyWithin(0, this.first, this.n);
    this.n -= this.first;
    this.first = 0;
  }

  private reserve(extra: number): void {
    if (this.n + extra <= this.track.length) return;
    if (this.first > 0) this.compact();
    const n = this.n + extra;
    if (n <= this.track.length) return;
    const cap = Math.max(n, this.track.length * 2, 1024);
    const t = new Uint32Array(cap);
    t.set(this.track.subarray(0, this.n));
    const o = new Int32Array(cap);
    o.set(this.offset.subarray(0, this.n));
    const q = new Uint32Array(cap);
    q.set(this.queryTime.subarray(0, this.n));
    this.track = t;
    this.offset = o;
    this.queryTime = q;
    const h = new Uint32Array(cap);
    h.set(this.hash.subarray(0, this.n));
    this.hash = h;
    const c = new Float32Array(cap);
    c.set(this.pitch.subarray(0, this.n));
    this.pitch = c;
  }
}

/** Number of distinct values (sorts the array). */
function distinct(xs: number[]): number {
  xs.sort((a, b) => a - b);
  let n = 0;
  for (let i = 0; i < xs.length; i++) if (i === 0 || xs[i] !== xs[i - 1]) n++;
  return n;
}

interface Points {
  /** Query frame, offset (track frame minus query frame), hash and pitch sample of each posting. */
  q: number[];
  o: number[];
  h: number[];
  c: number[];
}

/**
 * The line track = offset + scale * query that the most postings lie on, within toleranceFrames:
 * slopes are tried in steps that move the line at most that much across the query, each slope's
 * best offset found from a histogram, and the winner refined by least squares on its postings.
 */
function fitLine(p: Points, fpId: number, cfg: MatcherConfig): (Placement & { anchors: number }) | undefined {
  const n = p.q.length;
  if (n === 0) return undefined;
  const tol = cfg.toleranceFrames;
  let qLo = Infinity;
  let qHi = -Infinity;
  let oLo = Infinity;
  let oHi = -Infinity;
  for (let i = 0; i < n; i++) {
    qLo = Math.min(qLo, p.q[i]!);
    qHi = Math.max(qHi, p.q[i]!);
    oLo = Math.min(oLo, p.o[i]!);
    oHi = Math.max(oHi, p.o[i]!);
  }
  const span = Math.max(1, qHi - qLo);
  const step = Math.max(0.0005, tol / span);
  const steps = Math.floor(cfg.maxTimeScaleChange / step);
  // Offsets are taken at the query's middle, so that a slope turns the points about their centre.
  const qMid = (qLo + qHi) / 2;
  const pad = Math.ceil(cfg.maxTimeScaleChange * span) + 2;
  const width = Math.ceil(oHi - oLo) + 2 * pad + 1;
  const hist = new Int32Array(width);
  const w = Math.max(1, Math.round(2 * tol));
  let best = { votes: 0, u: 0, at: 0 };
  for (let k = 0; k <= 2 * steps; k++) {
    // 0, then +-1, +-2 steps: on a tie the slope nearer 1 wins.
    const u = (k & 1 ? -1 : 1) * Math.ceil(k / 2) * step;
    hist.fill(0);
    for (let i = 0; i < n; i++) hist[Math.round(p.o[i]! - u * (p.q[i]! - qMid) - oLo) + pad]!++;
    let sum = 0;
    for (let b = 0; b < width; b++) {
      sum += hist[b]! - (b >= w ? hist[b - w]! : 0);
      if (sum > best.votes) best = { votes: sum, u, at: b - (w - 1) / 2 + oLo - pad };
    }
  }
  // Least squares on the postings near the best line, then the postings near the refined one.
  let line = { a: best.at, u: best.u };
  for (let pass = 0; pass < 2; pass++) {
    let sq = 0;
    let so = 0;
    let sqq = 0;
    let sqo = 0;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const x = p.q[i]! - qMid;
      if (Math.abs(p.o[i]! - line.a - line.u * x) > tol + (pass === 0 ? 0.5 : 0)) continue;
      sq += x;
      so += p.o[i]!;
      sqq += x * x;
      sqo += x * p.o[i]!;
      m++;
    }
    if (m < 2) break;
    const den = m * sqq - sq * sq;
    const u = den > 0 ? (m * sqo - sq * so) / den : line.u;
    const clamped = Math.max(-cfg.maxTimeScaleChange, Math.min(cfg.maxTimeScaleChange, u));
    line = { u: clamped, a: (so - clamped * sq) / m };
  }
  const hashes: number[] = [];
  const anchors: number[] = [];
  let startFrame = Infinity;
  let pitch = 0;
  for (let i = 0; i < n; i++) {
    if (Math.abs(p.o[i]! - line.a - line.u * (p.q[i]! - qMid)) > tol) continue;
    hashes.push(p.h[i]!);
    anchors.push(p.q[i]!);
    pitch += p.c[i]!;
    startFrame = Math.min(startFrame, p.q[i]!);
  }
  if (!hashes.length) return undefined;
  // Offset at query frame 0: o(q) = a + u (q - qMid), and track = q + o(q) = (a - u qMid) + (1 + u) q.
  const offsetFrames = line.a - line.u * qMid;
  return {
    fpId,
    offsetFrames,
    offsetSeconds: Math.max(0, offsetFrames * FRAME_SECONDS),
    timeScale: 1 + line.u,
    pitchShiftCents: pitch / hashes.length,
    alignedHashes: distinct(hashes),
    anchors: distinct(anchors),
    startFrame,
  };
}
