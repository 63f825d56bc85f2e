// Matching: each posting found for a query hash votes for (track, offset), where offset is the
// catalog frame minus the query frame. A true match piles votes on one offset; chance postings
// scatter. Votes accumulate, so a live session adds new hashes' postings as they arrive.
import { FRAME_SECONDS } from './fingerprint.js';
import type { QueryPostings } from './fingerprint-index.js';

export interface MatcherConfig {
  /** Offsets within this many frames of each other count as one alignment. */
  toleranceFrames: number;
  /**
   * Fewest distinct hashes among the aligned votes for a match; calibrated on non-catalog clips
   * (bench/accuracy). Distinct, because two unrelated pieces with the same tempo and similar
   * drums repeat one hash on every beat and pile its votes on periodic offsets.
   */
  minAligned: number;
  /** Fewest distinct query frames among them: a burst at one instant is not a match. */
  minAnchors: number;
}

// minAligned: calibrated by bench/accuracy (see the README): the smallest count at which no
// non-catalog 5 s clip and no wrong track matched, over every condition, plus a margin.
export const DEFAULT_MATCHER: MatcherConfig = { toleranceFrames: 1, minAligned: 40, minAnchors: 5 };

export interface Match {
  fpId: number;
  /** Where in the track the query starts, in frames (median of the aligned offsets). */
  offsetFrames: number;
  offsetSeconds: number;
  alignedHashes: number;
  /** 0.5 at the acceptance threshold, towards 1 as aligned evidence grows. */
  confidence: number;
  /** Query frame of the earliest aligned hash: where the matched audio begins in the query. */
  startFrame: number;
}

const OFFSET_BIAS = 2 ** 30;
/** Tracks re-scored by distinct hashes after the raw-vote shortlist ... */
const CANDIDATES = 10;
/** ... at this many offsets each. */
const OFFSETS_PER_TRACK = 3;

interface Candidate {
  track: number;
  offset: number;
  votes: number;
}
const voteKey = (track: number, offset: number) => track * 2 ** 31 + (offset + OFFSET_BIAS);

/**
 * Offsets with at least this many votes are kept in a set, so that best() looks at those alone
 * instead of every offset that a chance hit touched (most of a long stream's). A window of
 * 2*tol+1 offsets with minAligned votes then always has a seed when minAligned >= 7 at tol 1.
 */
const HOT_VOTES = 3;

export class VoteTable {
  private readonly votes = new Map<number, number>();
  private readonly hot = new Set<number>();
  private track = new Uint32Array(0);
  private offset = new Int32Array(0);
  private queryTime = new Uint32Array(0);
  private hash = new Uint32Array(0);
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
    this.n += p.length;
    for (let i = 0; i < p.length; i++) {
      const k = voteKey(p.track[i]!, p.offset[i]!);
      const c = (this.votes.get(k) ?? 0) + 1;
      this.votes.set(k, c);
      if (c === HOT_VOTES) this.hot.add(k);
    }
  }

  /**
   * Forgets the votes of postings whose query frame is before `frame`, so that a long stream is
   * judged on its recent audio. Postings arrive roughly in time order; the scan stops at the
   * first later one.
   */
  dropBefore(frame: number): void {
    while (this.first < this.n && this.queryTime[this.first]! < frame) {
      const k = voteKey(this.track[this.first]!, this.offset[this.first]!);
      const c = this.votes.get(k)! - 1;
      if (c) this.votes.set(k, c);
      else this.votes.delete(k);
      if (c < HOT_VOTES) this.hot.delete(k);
      this.first++;
    }
    if (this.first > 4096 && this.first * 2 > this.n) this.compact();
  }

  /**
   * The accepted matches, best first. `minAligned` lowers (or raises) the acceptance for this
   * call, as live sessions do for provisional answers; confidence stays relative to the
   * calibrated threshold.
   */
  best(max: number, minAligned = this.cfg.minAligned): Match[] {
    const { toleranceFrames: tol, minAnchors } = this.cfg;
    // A window of 2*tol+1 offsets holding minAligned votes has one offset with at least
    // minAligned / (2*tol+1) of them: only windows around such offsets need a look.
    const seedMin = Math.max(HOT_VOTES, Math.ceil(minAligned / (2 * tol + 1)));
    const windows: Candidate[] = [];
    for (const k of this.hot) {
      if (this.votes.get(k)! < seedMin) continue;
      const track = Math.floor(k / 2 ** 31);
      const off = (k % 2 ** 31) - OFFSET_BIAS;
      for (let centre = off - tol; centre <= off + tol; centre++) {
        let sum = 0;
        for (let d = centre - tol; d <= centre + tol; d++) sum += this.votes.get(voteKey(track, d)) ?? 0;
        if (sum >= minAligned) windows.push({ track, offset: centre, votes: sum });
      }
    }
    // Raw votes only shortlist, a few offsets per track: a passage that recurs in a track, busier
    // the second time, can outvote the right place while matching fewer distinct hashes.
    windows.sort((a, b) => b.votes - a.votes);
    const perTrack = new Map<number, Candidate[]>();
    for (const w of windows) {
      const list = perTrack.get(w.track);
      if (!list) {
        if (perTrack.size < Math.max(max * 2, CANDIDATES)) perTrack.set(w.track, [w]);
      } else if (list.length < OFFSETS_PER_TRACK && list.every((o) => Math.abs(o.offset - w.offset) > 2 * tol)) {
        list.push(w);
      }
    }
    const aligned = new Map<Candidate, { anchors: Set<number>; hashes: Set<number>; offsets: number[] }>();
    for (const list of perTrack.values()) for (const c of list) aligned.set(c, { anchors: new Set(), hashes: new Set(), offsets: [] });
    for (let i = this.first; i < this.n; i++) {
      const list = perTrack.get(this.track[i]!);
      if (!list) continue;
      const o = this.offset[i]!;
      for (const c of list) {
        if (o < c.offset - tol || o > c.offset + tol) continue;
        const a = aligned.get(c)!;
        a.anchors.add(this.queryTime[i]!);
        a.hashes.add(this.hash[i]!);
        a.offsets.push(o);
      }
    }
    const bestPerTrack = new Map<number, Match>();
    for (const [c, { anchors, hashes, offsets }] of aligned) {
      if (hashes.size < minAligned || anchors.size < minAnchors) continue;
      const cur = bestPerTrack.get(c.track);
      if (cur && cur.alignedHashes >= hashes.size) continue;
      offsets.sort((a, b) => a - b);
      const median = offsets[offsets.length >> 1]!;
      bestPerTrack.set(c.track, {
        fpId: c.track,
        offsetFrames: median,
        offsetSeconds: Math.max(0, median * FRAME_SECONDS),
        alignedHashes: hashes.size,
        confidence: 1 - 0.5 ** (hashes.size / this.cfg.minAligned),
        startFrame: Math.min(...anchors),
      });
    }
    return [...bestPerTrack.values()].sort((a, b) => b.alignedHashes - a.alignedHashes).slice(0, max);
  }

  private compact(): void {
    for (const a of [this.track, this.offset, this.queryTime, this.hash]) a.copyWithin(0, this.first, this.n);
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
  }
}
