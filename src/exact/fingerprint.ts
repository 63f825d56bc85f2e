// Landmark fingerprints from the native extractor. Two profiles share every parameter that
// decides where peaks are. The query pairs each anchor with one more target, and is analysed at
// two frame phases (the second half a hop later): a recording starts at an arbitrary sample, so
// its frames straddle the catalog's, and one of the two phases always lies within a quarter hop
// of them. Measured on the accuracy bench, the second phase lifted clean 5 s clips from 92% to
// 98% at the right offset. Long windows (128 ms) resolve the tonal peaks that survive heavy noise.
import { SAMPLE_RATE } from '../audio/decode.js';
import { addon } from '../base/native.js';

interface NativeOutput extends Hashes {
  sketch: Uint32Array;
}
interface NativeExtractor {
  push(pcm: Float32Array): NativeOutput;
  flush(): NativeOutput;
}
interface NativeModule {
  Extractor: new (config: ExtractorConfig) => NativeExtractor;
}

const native = addon as NativeModule;

export interface ExtractorConfig {
  fftSize: number;
  hop: number;
  binLo: number;
  binHi: number;
  freqRadius: number;
  timeRadius: number;
  meanRadius: number;
  minStrength: number;
  floorLog2: number;
  rankRadius: number;
  rankKeep: number;
  dtMax: number;
  zoneCents: number;
  fanout: number;
  anchorCents: number;
  intervalCents: number;
  ratioSteps: number;
  probeCents: number;
  sketchShifts: number;
  sketchShiftCents: number;
  sketchBands: number;
  sketchStrong: number;
  sketchLoBin: number;
  sketchHiBin: number;
  sketchLag: number;
  sketchSmooth: number;
}

export interface ProfileConfig extends ExtractorConfig {
  /** Frame phases analysed, evenly spread over one hop; their hashes are merged. */
  phases: number;
}

/**
 * Bits of a sketch word: the low half-word holds them, the high one marks the strong ones. The
 * index stores the low half-word.
 */
export const SKETCH_BITS = 16;

const shared = {
  fftSize: 2048,
  hop: 512,
  binLo: 20,
  binHi: 520,
  freqRadius: 12,
  timeRadius: 2,
  meanRadius: 32,
  minStrength: 1.0,
  floorLog2: -10,
  rankRadius: 4,
  rankKeep: 10,
  dtMax: 24,
  // Hashes are triplets of peaks (an anchor and two of its targets): the targets' intervals from
  // the anchor in cents and where the first falls in time between anchor and second. Playing
  // faster, slower or transposed leaves them unchanged (Six and Leman's scheme for Panako), so
  // one index serves every speed; only the anchor's own pitch moves, and a query hashes each
  // anchor step within probeCents of its own.
  zoneCents: 1200,
  anchorCents: 150,
  intervalCents: 50,
  ratioSteps: 8,
  // Sketch words (native/src/sketch.h) verify candidate matches: 16 bits from 17 bands between
  // 203 Hz and 4 kHz, a query compared on its 10 strongest. Chosen on the accuracy bench's clips
  // against every 5 s excerpt of the kept-out tracks: 32 narrower bands told
  // same-recording from related-music answers apart less well under noise, 10-12 bands about as
  // well; comparing the strongest 10 rather than all 16 bits kept 4 more points at 0 dB SNR at the
  // same margin to the related music.
  sketchBands: SKETCH_BITS,
  sketchStrong: 10,
  sketchLoBin: 26,
  sketchHiBin: 500,
  sketchShiftCents: 50,
  // Each bit compares a band difference, smoothed over 3 frames, with itself 4 frames (128 ms)
  // before: on the bench's rooms the one-frame change of Haitsma and Kalker verified 6% of clips
  // at RT60 1 s and lags of 3-6 frames 47-71%, at the same margin to related music.
  sketchLag: 4,
  sketchSmooth: 3,
};

export const PROFILES = {
  index: { ...shared, fanout: 4, probeCents: 0, sketchShifts: 0, phases: 1 },
  // A transposed query is verified on words whose bands moved with it (verify.ts).
  query: { ...shared, fanout: 5, probeCents: 100, sketchShifts: 2, phases: 2 },
} satisfies Record<string, ProfileConfig>;

export type Profile = keyof typeof PROFILES;

/** Seconds per frame: hash times are in frames. */
export const FRAME_SECONDS = shared.hop / SAMPLE_RATE;

/** Identifies the parameters an index was built with: a different one needs a rebuild. */
export const FINGERPRINT_VERSION = `tri2:${JSON.stringify(PROFILES.index)}`;

export interface SketchLayout {
  phases: number;
  /** Band shifts on either side of the unshifted bands, each of shiftCents. */
  shifts: number;
  shiftCents: number;
}

export interface Hashes {
  hashes: Uint32Array;
  /** Frame of each hash's anchor peak, counted from the start of the stream. */
  times: Uint32Array;
  /** Pitch of each hash's anchor peak, cents above the lowest peak bin. */
  cents: Uint32Array;
}

/** Bits of a hash below its anchor step (native/src/extractor.h: two intervals and a ratio). */
const ANCHOR_SHIFT = 15;

/**
 * How far a query's anchor lies above the middle of the catalog's anchor step that its hash
 * matched, in cents: the transposition plus an even spread of +-anchorCents/2, which averages out
 * over a match's hashes.
 */
export function pitchSample(hash: number, queryCents: number): number {
  return queryCents - ((hash >>> ANCHOR_SHIFT) + 0.5) * shared.anchorCents;
}

export interface Fingerprint extends Hashes {
  /**
   * Per phase, the sketch words of the frames that lie wholly inside the audio pushed, in frame
   * order (the frames that end() analyses reach into its padding and give none); per frame, a
   * word per band shift (2 * sketchShifts + 1), the lowest first.
   */
  sketches: Uint32Array[];
}

/**
 * A stream of PCM blocks of any size in, the hashes that became final out. Times of a later
 * phase count frames from where that phase starts, a fraction of a hop into the stream: within
 * the matcher's tolerance of the first phase's frames.
 */
export class FingerprintStream {
  private readonly phases: { ex: NativeExtractor; skip: number }[];
  private readonly cfg: ProfileConfig;

  constructor(profile: Profile | ProfileConfig) {
    const cfg = typeof profile === 'string' ? PROFILES[profile] : profile;
    this.cfg = cfg;
    if (!Number.isInteger(cfg.phases) || cfg.phases < 1) throw new RangeError('fingerprint config: phases must be a positive integer');
    this.phases = Array.from({ length: cfg.phases }, (_, k) => ({
      ex: new native.Extractor(cfg),
      skip: Math.round((k * cfg.hop) / cfg.phases),
    }));
  }

  /** How its sketch words are laid out (verify.ts's QuerySketch reads them). */
  sketchLayout(): SketchLayout {
    return { phases: this.phases.length, shifts: this.cfg.sketchShifts, shiftCents: this.cfg.sketchShiftCents };
  }

  push(pcm: Float32Array): Fingerprint {
    return merge(
      this.phases.map((p) => {
        const drop = Math.min(p.skip, pcm.length);
        p.skip -= drop;
        return p.ex.push(drop ? pcm.subarray(drop) : pcm);
      }),
    );
  }

  /** Ends the stream and returns the last hashes. */
  end(): Fingerprint {
    const outs = this.phases.map((p) => p.ex.flush());
    return { ...concatHashes(outs), sketches: outs.map(() => new Uint32Array(0)) };
  }
}

export function fingerprint(pcm: Float32Array, profile: Profile | ProfileConfig): Fingerprint {
  const s = new FingerprintStream(profile);
  const a = s.push(pcm);
  return { ...concatHashes([a, s.end()]), sketches: a.sketches };
}

function merge(outs: NativeOutput[]): Fingerprint {
  return { ...concatHashes(outs), sketches: outs.map((o) => o.sketch) };
}

export function concatHashes(parts: Hashes[]): Hashes {
  if (parts.length === 1) return parts[0]!;
  const n = parts.reduce((a, p) => a + p.hashes.length, 0);
  const hashes = new Uint32Array(n);
  const times = new Uint32Array(n);
  const cents = new Uint32Array(n);
  let at = 0;
  for (const p of parts) {
    hashes.set(p.hashes, at);
    times.set(p.times, at);
    cents.set(p.cents, at);
    at += p.hashes.length;
  }
  return { hashes, times, cents };
}
