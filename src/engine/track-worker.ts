// A piscina worker of track-decoder.ts: decodes one catalog file with ffmpeg and fingerprints it
// with the index profile. Its audio and hashes move back to the event loop without a copy.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { task } from '../base/channel.js';
import { decodeFile } from '../audio/decode.js';
import { fingerprint, type Fingerprint } from '../exact/fingerprint.js';

export interface TrackTask {
  file: string;
  label: string;
  ffmpegPath: string;
}

export interface DecodedTrack {
  pcm: Float32Array;
  fp: Fingerprint;
}

export default task(async (t: TrackTask) => {
  const pcm = await decodeFile(t.file, { ffmpegPath: t.ffmpegPath, label: t.label });
  const fp = fingerprint(pcm, 'index');
  const value: DecodedTrack = { pcm, fp };
  const buffers = [pcm.buffer, fp.hashes.buffer, fp.times.buffer, ...fp.sketches.map((s) => s.buffer)];
  return move({ [transferableSymbol]: [...new Set(buffers)], [valueSymbol]: value });
});
