// Verification: the votes say which track and offset are plausible; a candidate becomes a match
// when the query's sketch words (native/src/sketch.h) agree with the track's at that offset.
// Landmark hashes alone cannot tell a recording from related music: tracks of one game that
// share a theme or an instrument line align dozens of distinct hashes with a clip of each other
// (bench/accuracy found 36 for a 5 s clean excerpt), as many as a right answer keeps in heavy
// noise. Their sketches still differ in over 40% of the strong bits (the lowest of any answer
// naming a wrong track there: 0.419-0.44 with the room-proof sketch of 2026-12-07), while
// accepting up to 0.38 (matcher.ts) answers eight in ten clips in white noise at 0 dB SNR.
import type { FingerprintIndex } from './fingerprint-index.js';
import { PROFILES, type SketchLayout } from './fingerprint.js';
import type { Acceptance, Candidate, Match, Placement } from './matcher.js';

/** Fewer frames compared than this (1.5 s) verify nothing: too few bits to tell. */
export const MIN_VERIFIED_FRAMES = 47;
/**
 * A phase's first frames (as many as a window has hops) reach back before the stream into the
 * extractor's zero padding, and the words of the next sketchSmooth + sketchLag frames still mix
 * theirs with that padding: they do not describe the audio.
 */
const { fftSize, hop, sketchSmooth, sketchLag } = PROFILES.query;
const LEADING_WORDS = fftSize / hop + sketchSmooth + sketchLag;

const POPCOUNT16 = new Uint8Array(1 << 16);
for (let i = 1; i < POPCOUNT16.length; i++) POPCOUNT16[i] = (i & 1) + POPCOUNT16[i >> 1]!;

/**
 * The sketch words of a query stream, per analysis phase and band shift (a word per shift per
 * frame, interleaved); a live session drops the old ones.
 */
export class QuerySketch {
  /** Per phase: its words, how many are held (n) and the frames seen since the start. */
  private readonly phases: { words: Uint32Array; n: number; seen: number }[];
  /** Frames before this are dropped. */
  private from = 0;

  private readonly shifts: number;
  private readonly shiftCents: number;

  constructor(layout: SketchLayout) {
    this.shifts = layout.shifts;
    this.shiftCents = layout.shiftCents;
    this.phases = Array.from({ length: layout.phases }, () => ({ words: new Uint32Array(1024), n: 0, seen: 0 }));
  }

  private get stride(): number {
    return 2 * this.shifts + 1;
  }

  /** Appends each phase's new words (FingerprintStream.push's `sketches`). */
  append(sketches: Uint32Array[]): void {
    sketches.forEach((w, k) => {
      const p = this.phases[k]!;
      this.trim(p);
      if (p.n + w.length > p.words.length) {
        const grown = new Uint32Array(Math.max(p.words.length * 2, p.n + w.length));
        grown.set(p.words.subarray(0, p.n));
        p.words = grown;
      }
      p.words.set(w, p.n);
      p.n += w.length;
      p.seen += w.length / this.stride;
    });
  }

  /** Forgets frames before `frame` (a live session judges its recent audio). */
  dropBefore(frame: number): void {
    this.from = Math.max(this.from, frame);
  }

  /**
   * Share of the query's strong bits that differ from the track's, the query's frame j at the
   * track's frame offset + scale * j, on the words whose bands moved nearest `pitchCents`: the
   * lowest over the phases and a frame either way (a phase's frames straddle the track's).
   * Undefined when fewer than `minFrames` frames overlap.
   */
  bitErrorRate(
    track: Uint16Array,
    at: { offsetFrames: number; timeScale: number; pitchShiftCents: number },
    minFrames = MIN_VERIFIED_FRAMES,
  ): number | undefined {
    const { offsetFrames: offset, timeScale: scale } = at;
    const S = this.stride;
    const shift = Math.max(0, Math.min(S - 1, this.shifts + Math.round(at.pitchShiftCents / this.shiftCents)));
    let best: number | undefined;
    for (const p of this.phases) {
      const first = p.seen - p.n / S; // frame of the first word held
      const lo = Math.max(this.from, first, LEADING_WORDS);
      const hi = p.seen;
      for (let d = -1; d <= 1; d++) {
        // Query frames j whose track frame round(offset + d + scale * j) lies inside the track.
        const j0 = Math.max(lo, Math.ceil((-0.5 - offset - d) / scale));
        const j1 = Math.min(hi, Math.ceil((track.length - 0.5 - offset - d) / scale));
        if (j1 - j0 < Math.max(1, minFrames)) continue;
        let errors = 0;
        let bits = 0;
        for (let j = j0; j < j1; j++) {
          const w = p.words[(j - first) * S + shift]!;
          const strong = w >>> 16;
          errors += POPCOUNT16[(w ^ track[Math.round(offset + d + scale * j)]!) & strong]!;
          bits += POPCOUNT16[strong]!;
        }
        const rate = bits ? errors / bits : 1;
        if (best === undefined || rate < best) best = rate;
      }
    }
    return best;
  }

  private trim(p: { words: Uint32Array; n: number; seen: number }): void {
    const S = this.stride;
    const first = p.seen - p.n / S;
    const drop = Math.min(p.n / S, this.from - first) * S;
    if (drop <= 0 || drop * 2 < p.words.length) return;
    p.words.copyWithin(0, drop, p.n);
    p.n -= drop;
  }
}

/**
 * A candidate with its sketch's bit error rate at its offset, as a match (whether or not it is
 * accepted), or undefined when fewer than `minFrames` frames can be compared.
 */
export function score(c: Placement, q: QuerySketch, index: FingerprintIndex, acc: Acceptance, minFrames = MIN_VERIFIED_FRAMES): Match | undefined {
  const words = index.sketch(c.fpId);
  return words && scoreAt(c, words, q, acc, minFrames);
}

/** score, given the track's sketch words. */
function scoreAt(c: Placement, words: Uint16Array, q: QuerySketch, acc: Acceptance, minFrames = MIN_VERIFIED_FRAMES): Match | undefined {
  const rate = q.bitErrorRate(words, c, minFrames);
  if (rate === undefined) return undefined;
  const { fpId, offsetFrames, offsetSeconds, timeScale, pitchShiftCents, alignedHashes, startFrame } = c;
  return {
    fpId,
    offsetFrames,
    offsetSeconds,
    timeScale,
    pitchShiftCents,
    alignedHashes,
    startFrame,
    bitErrorRate: rate,
    confidence: Math.max(0, 1 - (0.5 * rate) / acc.maxBitErrorRate),
  };
}

/**
 * The candidates that verify, as matches, most aligned first. The strongest candidate must be one
 * of them: when the most aligned hashes point to related music, nothing is answered rather than a
 * weaker candidate (seen on the accuracy bench: a reverberant clip whose own track failed, while
 * a track sharing its theme verified). Whether a track is accepted is decided at its most
 * aligned offset (trying more offsets would give a wrong track more chances); its match is then
 * placed at the offset, of those it aligned at, whose sketch agrees best.
 */
export function verify(cands: Candidate[], q: QuerySketch, index: FingerprintIndex, acc: Acceptance): Match[] {
  const out: Match[] = [];
  for (const c of cands) {
    const words = index.sketch(c.fpId);
    const m = words && scoreAt(c, words, q, acc);
    if (m && m.bitErrorRate <= acc.maxBitErrorRate && m.alignedHashes >= acc.minAligned) out.push(placed(m, c.elsewhere, words!, q));
    else if (out.length === 0) return [];
  }
  return out;
}

/**
 * Another offset must agree better by this much: two copies of a loop differ by about as much in
 * bit error rate from noise alone, and a live session's position would flip between them.
 */
const PLACEMENT_MARGIN = 0.02;

/** The match moved to that offset; its evidence (aligned hashes, bit error rate) stays the decision's. */
function placed(m: Match, elsewhere: Placement[], words: Uint16Array, q: QuerySketch): Match {
  let at: Placement = m;
  let rate = m.bitErrorRate - PLACEMENT_MARGIN;
  for (const p of elsewhere) {
    const r = q.bitErrorRate(words, p, MIN_VERIFIED_FRAMES);
    if (r !== undefined && r < rate) [at, rate] = [p, r];
  }
  const { offsetFrames, offsetSeconds, timeScale, pitchShiftCents, startFrame } = at;
  return { ...m, offsetFrames, offsetSeconds, timeScale, pitchShiftCents, startFrame };
}
