// A piscina worker of track-decoder.ts: decodes one catalog file with ffmpeg and fingerprints it
// with the index profile. Its audio and hashes move back to the event loop without a copy.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { toAppError, type ErrorCode } from '../base/errors.js';
import { decodeFile } from '../audio/decode.js';
import { fingerprint, type Fingerprint } from '../exact/fingerprint.js';

export interface TrackTask {
  file: string;
  label: string;
  ffmpegPath: string;
}

/** A typed error travels as its code and message: a thrown AppError would arrive as a plain Error. */
export type TrackResult = { pcm: Float32Array; fp: Fingerprint } | { error: { code: ErrorCode; message: string } };

export default async function decodeTrack(task: TrackTask): Promise<TrackResult | ReturnType<typeof move>> {
  try {
    const pcm = await decodeFile(task.file, { ffmpegPath: task.ffmpegPath, label: task.label });
    const fp = fingerprint(pcm, 'index');
    const value: TrackResult = { pcm, fp };
    const buffers = [pcm.buffer, fp.hashes.buffer, fp.times.buffer, ...fp.sketches.map((s) => s.buffer)];
    return move({ [transferableSymbol]: [...new Set(buffers)], [valueSymbol]: value });
  } catch (e) {
    const { code, message } = toAppError(e);
    return { error: { code, message: code === 'INTERNAL' ? (e as Error).message : message } };
  }
}
