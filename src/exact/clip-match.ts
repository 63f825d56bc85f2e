// A complete clip's matches: fingerprint, look up, vote and verify. The Engine
// (CLI, ingest's same-recording check) and the server's matching threads both call this, each
// with its own reader of the index.
import { AppError } from '../base/errors.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import type { FingerprintIndex } from './fingerprint-index.js';
import { FingerprintStream } from './fingerprint.js';
import { VoteTable, type Match, type MatcherConfig } from './matcher.js';
import { QuerySketch, verify } from './verify.js';

export const MIN_QUERY_SECONDS = 3;
export const MAX_QUERY_SECONDS = 30;
/** Throws AUDIO_TOO_SHORT for a clip of 16 kHz mono PCM under MIN_QUERY_SECONDS. */
export function checkClipLength(pcm: Float32Array): void {
  const seconds = pcm.length / SAMPLE_RATE;
  if (seconds < MIN_QUERY_SECONDS) {
    throw new AppError('AUDIO_TOO_SHORT', `clip is ${seconds.toFixed(1)} s long; at least ${MIN_QUERY_SECONDS} s are needed`);
  }
}

/**
 * Matches of a clip of 16 kHz mono PCM, best first: at least 3 s; only its first 30 s are used.
 * A recording played faster, slower or transposed needs no retry: the hashes do not change, and
 * the votes' line gives its time scale.
 */
export function matchClip(index: FingerprintIndex, matcher: MatcherConfig, pcm: Float32Array, maxResults: number): Match[] {
  checkClipLength(pcm);
  const clip = pcm.subarray(0, MAX_QUERY_SECONDS * SAMPLE_RATE);
  const votes = new VoteTable(matcher);
  const stream = new FingerprintStream('query');
  const sketch = new QuerySketch(stream.sketchLayout());
  const h = stream.push(clip);
  votes.add(index.lookup(h));
  sketch.append(h.sketches);
  votes.add(index.lookup(stream.end()));
  return verify(votes.best(maxResults), sketch, index, matcher);
}
