// Matching: each posting found for a query hash votes for (track, offset), where offset is the
// catalog frame minus the query frame. A true match piles votes on one offset; chance postings
// scatter. Votes accumulate, so a live session adds new hashes' postings as they arrive. The
// candidates the votes give are then verified by their sketches (verify.ts).
import { FRAME_SECONDS } from './fingerprint.js';
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
  /** Offsets within this many frames of each other count as one alignment. */
  toleranceFrames: number;
  /** Fewest distinct query frames among the aligned votes: a burst at one instant is not a match. */
  minAnchors: number;
  /**
   * A clip with no match that this would accept is tried again at other playback speeds
   * (clip-match.ts). The acceptance itself, except where that is loosened to see the candidates
   * below it (bench/accuracy's calibration).
   */
  retryUnless: Acceptance;
}

// Calibrated by bench/accuracy.ts on its clips and on every 5 s excerpt of the
// tracks it keeps out of the catalog: no answer naming a wrong track there verifies below
// 0.406, and at 0.38 white noise at 0 dB SNR is answered right 91.9% of the time (76.8% when
// 30 aligned hashes had to suffice alone). A few aligned hashes are still required: they pick
// the offset the sketch is compared at (5 answered 1.4 points more at 0 dB than 8, and no
// wrong track).
const ACCEPTANCE: Acceptance = { minAligned: 5, maxBitErrorRate: 0.38 };
export const DEFAULT_MATCHER: MatcherConfig = { toleranceFrames: 1, minAnchors: 5, ...ACCEPTANCE, retryUnless: ACCEPTANCE };

/** A track and offset that the votes point to. */
export interface Placement {
  fpId: number;
  /** Where in the track the query starts, in frames (median of the aligned offsets). */
  offsetFrames: number;
  offsetSeconds: number;
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
interface Window {
  track: number;
  offset: number;
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
    for (let i = 0; i < p.length; i++) this.votes.bump(p.track[i]!, p.offset[i]!, 1);
  }

  /**
   * Forgets the votes of postings whose query frame is before `frame`, so that a long stream is
   * judged on its recent audio. Each lookup's postings come after the previous lookup's, later
   * in time (a live session looks up a fraction of a second at a time); the scan stops at the
   * first posting that is not before `frame`, so one out of order is dropped an evaluation late.
   */
  dropBefore(frame: number): void {
    while (this.first < this.n && this.queryTime[this.first]! < frame) {
      this.votes.bump(this.track[this.first]!, this.offset[this.first]!, -1);
      this.first++;
    }
    if (this.first > 4096 && this.first * 2 > this.n) this.compact();
  }

  /**
   * The candidates with at least `minAligned` distinct aligned hashes, at most `max` tracks, the
   * best offset of each, most aligned first.
   */
  best(max: number, minAligned = this.cfg.minAligned): Candidate[] {
    const { toleranceFrames: tol, minAnchors } = this.cfg;
    // A window of 2*tol+1 offsets holding minAligned votes has one offset with at least
    // minAligned / (2*tol+1) of them: only windows around such offsets need a look.
    const seedMin = Math.max(1, Math.ceil(minAligned / (2 * tol + 1)));
    const windows: Window[] = [];
    this.votes.forEachAtLeast(seedMin, (track, off) => {
      for (let centre = off - tol; centre <= off + tol; centre++) {
        let sum = 0;
        for (let d = centre - tol; d <= centre + tol; d++) sum += this.votes.get(track, d);
        if (sum >= minAligned) windows.push({ track, offset: centre, votes: sum });
      }
    });
    // Raw votes only shortlist, a few offsets per track: a passage that recurs in a track, busier
    // the second time, can outvote the right place while matching fewer distinct hashes.
    windows.sort((a, b) => b.votes - a.votes);
    const perTrack = new Map<number, Window[]>();
    for (const w of windows) {
      const list = perTrack.get(w.track);
      if (!list) {
        if (perTrack.size < Math.max(max * 2, CANDIDATES)) perTrack.set(w.track, [w]);
      } else if (list.length < OFFSETS_PER_TRACK && list.every((o) => Math.abs(o.offset - w.offset) > 2 * tol)) {
        list.push(w);
      }
    }
    const cands = [...perTrack.values()].flat();
    if (cands.length === 0) return [];
    // One pass over the postings collects each candidate's aligned hashes, query frames and offsets.
    const candTrack = Int32Array.from(cands, (c) => c.track);
    const aligned = cands.map(() => ({ anchors: [] as number[], hashes: [] as number[], offsets: [] as number[] }));
    for (let i = this.first; i < this.n; i++) {
      const t = this.track[i]!;
      const o = this.offset[i]!;
      for (let c = 0; c < candTrack.length; c++) {
        if (candTrack[c] !== t || o < cands[c]!.offset - tol || o > cands[c]!.offset + tol) continue;
        const a = aligned[c]!;
        a.anchors.push(this.queryTime[i]!);
        a.hashes.push(this.hash[i]!);
        a.offsets.push(o);
      }
    }
    const perTrackFound = new Map<number, Placement[]>();
    cands.forEach((c, k) => {
      const { anchors, hashes, offsets } = aligned[k]!;
      const nHashes = distinct(hashes);
      if (nHashes < minAligned || distinct(anchors) < minAnchors) return;
      offsets.sort((a, b) => a - b);
      const median = offsets[offsets.length >> 1]!;
      const found = {
        fpId: c.track,
        offsetFrames: median,
        offsetSeconds: Math.max(0, median * FRAME_SECONDS),
        alignedHashes: nHashes,
        startFrame: Math.min(...anchors),
      };
      const list = perTrackFound.get(c.track);
      if (list) list.push(found);
      else perTrackFound.set(c.track, [found]);
    });
    const out = [...perTrackFound.values()].map((found): Candidate => {
      found.sort((a, b) => b.alignedHashes - a.alignedHashes);
      return { ...found[0]!, elsewhere: found.slice(1) };
    });
    return out.sort((a, b) => b.alignedHashes - a.alignedHashes).slice(0, max);
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

/** Number of distinct values (sorts the array). */
function distinct(xs: number[]): number {
  xs.sort((a, b) => a - b);
  let n = 0;
  for (let i = 0; i < xs.length; i++) if (i === 0 || xs[i] !== xs[i - 1]) n++;
  return n;
}
