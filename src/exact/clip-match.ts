// A complete clip's matches: fingerprint, look up and vote, with the speed retries. The Engine
// (CLI, ingest's same-recording check) and the server's matching threads both call this, each
// with its own reader of the index.
import { AppError } from '../base/errors.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import type { FingerprintIndex } from './fingerprint-index.js';
import { FingerprintStream } from './fingerprint.js';
import { VoteTable, type Acceptance, type Match, type MatcherConfig } from './matcher.js';
import { changeSpeed, speedLength } from '../audio/speed.js';
import { QuerySketch, verify } from './verify.js';

export const MIN_QUERY_SECONDS = 3;
export const MAX_QUERY_SECONDS = 30;
/** Playback speeds a clip is tried at when it matches nothing at its own. */
const RETRY_SPEEDS = [1.02, 0.98];
/**
 * A retry gives up once it has looked up RETRY_CHECK_HASHES hashes (about a third of a 5 s clip)
 * with no candidate of RETRY_CHECK_ALIGNED distinct aligned hashes: most retries find nothing
 * (non-catalog clips, noisy ones), and this spares them most of the pass. On the accuracy
 * bench's speed-1.02 clips, every retry that answered had at least 29 at that point and every
 * other at most 11; in the white 0 dB and reverb conditions no retry answered, and none had more
 * than 13 even at mid-clip.
 */
const RETRY_CHECK_HASHES = 500;
const RETRY_CHECK_ALIGNED = 10;
/** Samples a retry fingerprints and looks up at a time. */
const RETRY_STEP = SAMPLE_RATE / 4;

/** Throws AUDIO_TOO_SHORT for a clip of 16 kHz mono PCM under MIN_QUERY_SECONDS. */
export function checkClipLength(pcm: Float32Array): void {
  const seconds = pcm.length / SAMPLE_RATE;
  if (seconds < MIN_QUERY_SECONDS) {
    throw new AppError('AUDIO_TOO_SHORT', `clip is ${seconds.toFixed(1)} s long; at least ${MIN_QUERY_SECONDS} s are needed`);
  }
}

/**
 * Matches of a clip of 16 kHz mono PCM, best first: at least 3 s; only its first 30 s are used.
 * `atOwnSpeed` skips the speed retries (ingest's search for another copy of a recording: a
 * re-encoding plays at the speed of the original).
 */
export function matchClip(index: FingerprintIndex, matcher: MatcherConfig, pcm: Float32Array, maxResults: number, atOwnSpeed = false): Match[] {
  checkClipLength(pcm);
  const clip = pcm.subarray(0, MAX_QUERY_SECONDS * SAMPLE_RATE);
  let matches = matchAt(index, matcher, { length: clip.length, range: (a, b) => clip.subarray(a, b) }, maxResults);
  if (atOwnSpeed) return matches;
  // A recording played a little fast or slow (a DJ's pitch fader, a tape) moves every peak's
  // bin and frame off the catalog's: when nothing matched, the clip is resampled back at a few
  // speeds and tried again. The resampled clip runs at catalog speed, so its offsets need no
  // correction; a clip that matches at 1.0 (the common case) costs nothing more.
  for (const speed of RETRY_SPEEDS) {
    if (accepts(matcher.retryUnless, matches[0])) break;
    const s = 1 / speed;
    const retry = matchAt(index, matcher, { length: speedLength(clip.length, s), range: (a, b) => changeSpeed(clip, s, a, b) }, maxResults, true);
    if (better(retry[0], matches[0])) matches = retry;
  }
  return matches;
}

const accepts = (acc: Acceptance, m: Match | undefined) => !!m && m.alignedHashes >= acc.minAligned && m.bitErrorRate <= acc.maxBitErrorRate;
const better = (a: Match | undefined, b: Match | undefined) => !!a && (!b || a.bitErrorRate < b.bitErrorRate);

/** A clip as matchAt reads it: its length, and its samples a range at a time. */
interface Samples {
  length: number;
  range(from: number, to: number): Float32Array;
}

/** A retry (`mayGiveUp`) is fingerprinted and looked up in steps, so that it can stop early. */
function matchAt(index: FingerprintIndex, matcher: MatcherConfig, clip: Samples, maxResults: number, mayGiveUp = false): Match[] {
  const votes = new VoteTable(matcher);
  const stream = new FingerprintStream('query');
  const sketch = new QuerySketch(stream.phaseCount);
  const step = mayGiveUp ? RETRY_STEP : clip.length;
  let looked = 0;
  let checked = !mayGiveUp;
  for (let at = 0; at < clip.length; at += step) {
    const h = stream.push(clip.range(at, Math.min(clip.length, at + step)));
    votes.add(index.lookup(h));
    sketch.append(h.sketches);
    looked += h.hashes.length;
    if (!checked && looked >= RETRY_CHECK_HASHES) {
      if (votes.best(1, RETRY_CHECK_ALIGNED).length === 0) return [];
      checked = true;
    }
  }
  votes.add(index.lookup(stream.end()));
  return verify(votes.best(maxResults), sketch, index, matcher);
}
