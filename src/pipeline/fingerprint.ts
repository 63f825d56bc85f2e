// Landmark fingerprints from the native extractor. Two profiles share every parameter that
// decides where peaks are, so a query's peaks are a superset of the catalog's at the same place:
// the query keeps more peaks per time window and pairs each anchor with more targets, which
// costs little for a few seconds of audio and recovers pairs that noise broke up.
import { createRequire } from 'node:module';
import { SAMPLE_RATE } from './decode.js';

interface NativeOutput {
  hashes: Uint32Array;
  times: Uint32Array;
}
interface NativeExtractor {
  push(pcm: Float32Array): NativeOutput;
  flush(): NativeOutput;
}
interface NativeModule {
  Extractor: new (config: ExtractorConfig) => NativeExtractor;
}

const native = createRequire(import.meta.url)('../../../native/build/Release/audio_ident_fp.node') as NativeModule;

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
  dfMax: number;
  fanout: number;
}

const shared = {
  fftSize: 512,
  hop: 256,
  binLo: 5,
  binHi: 172,
  freqRadius: 3,
  timeRadius: 3,
  meanRadius: 8,
  minStrength: 1.0,
  floorLog2: -10,
  rankRadius: 8,
  dtMax: 48,
  dfMax: 32,
};

export const PROFILES = {
  index: { ...shared, rankKeep: 10, fanout: 5 },
  query: { ...shared, rankKeep: 20, fanout: 12 },
} satisfies Record<string, ExtractorConfig>;

export type Profile = keyof typeof PROFILES;

/** Seconds per frame: hash times are in frames. */
export const FRAME_SECONDS = shared.hop / SAMPLE_RATE;

/** Bits in a hash (bin of the anchor, bin delta, frame delta). */
export const HASH_BITS = 21;

/** Identifies the parameters an index was built with: a different one needs a rebuild. */
export const FINGERPRINT_VERSION = `lm1:${JSON.stringify(PROFILES.index)}`;

export interface Hashes {
  hashes: Uint32Array;
  /** Frame of each hash's anchor peak, counted from the start of the stream. */
  times: Uint32Array;
}

/** A stream of PCM blocks of any size in, the hashes that became final out. */
export class FingerprintStream {
  private readonly ex: NativeExtractor;

  constructor(profile: Profile | ExtractorConfig) {
    this.ex = new native.Extractor(typeof profile === 'string' ? PROFILES[profile] : profile);
  }

  push(pcm: Float32Array): Hashes {
    return this.ex.push(pcm);
  }

  /** Ends the stream and returns the last hashes. */
  end(): Hashes {
    return this.ex.flush();
  }
}

export function fingerprint(pcm: Float32Array, profile: Profile | ExtractorConfig): Hashes {
  const s = new FingerprintStream(profile);
  return concatHashes([s.push(pcm), s.end()]);
}

export function concatHashes(parts: Hashes[]): Hashes {
  const n = parts.reduce((a, p) => a + p.hashes.length, 0);
  const hashes = new Uint32Array(n);
  const times = new Uint32Array(n);
  let at = 0;
  for (const p of parts) {
    hashes.set(p.hashes, at);
    times.set(p.times, at);
    at += p.hashes.length;
  }
  return { hashes, times };
}
