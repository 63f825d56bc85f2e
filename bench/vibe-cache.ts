// The raw material of bench:vibe, computed once per track and cached outside the checkout
// (CACHE_DIR/vibe-bench/<model>/): the model's chunk and track embeddings, the time statistics
// of the layer under its temporal pooling (see vibe-layer-model.ts), and MFCC
// statistics (mean and standard deviation of 13 coefficients) of the whole track and of each
// chunk, for the baseline. Embedding the full corpus takes a while; a cached track is never
// recomputed, except one cached before the layer statistics were (it lacks them).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { MelSpectrogram } from '../src/vibe/mel.js';
import { CACHE_DIR, type CorpusTrack } from '../tools/corpus.js';
import type { LayerEmbedder } from './vibe-layer-model.js';

/** What one track vector or chunk holds; `layers` is the mean of its patches' layer statistics. */
export interface CachedItem {
  vector: number[];
  tags: number[];
  mfcc: number[];
  layers: Float32Array;
}

export interface CachedChunk extends CachedItem {
  start: number;
}

export interface CachedTrack {
  name: string;
  pkg: string;
  seconds: number;
  /** Wall time of embedTrack for this track, ms. */
  embedMs: number;
  track: CachedItem;
  chunks: CachedChunk[];
}

/** On disk `layers` is the base64 of its float32 bytes: exact, and a third of the JSON numbers' size. */
type Stored<T> = Omit<T, 'layers'> & { layers?: string };
interface StoredTrack extends Omit<CachedTrack, 'track' | 'chunks'> {
  track: Stored<CachedItem>;
  chunks: Stored<CachedChunk>[];
}

export const cacheDir = (modelId: string) => path.join(CACHE_DIR, 'vibe-bench', modelId);

export function readCached(modelId: string, t: CorpusTrack): CachedTrack | undefined {
  const file = path.join(cacheDir(modelId), `${t.name}.json`);
  if (!existsSync(file)) return undefined;
  const s = JSON.parse(readFileSync(file, 'utf8')) as StoredTrack;
  if (s.track.layers === undefined || s.chunks.some((c) => c.layers === undefined)) return undefined;
  const decode = <T extends Stored<CachedItem>>(x: T) => ({ ...x, layers: fromBase64(x.layers!) });
  return { ...s, track: decode(s.track), chunks: s.chunks.map(decode) };
}

function toBase64(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  // Copied out: a Buffer's offset in its pool need not be float-aligned.
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export async function computeCached(embedder: LayerEmbedder, ffmpegPath: string, t: CorpusTrack): Promise<CachedTrack> {
  const pcm = await decodeFile(t.file, { ffmpegPath });
  const started = performance.now();
  const e = await embedder.embedTrack(pcm);
  const embedMs = performance.now() - started;
  const coeffs = mfcc(pcm);
  const c: CachedTrack = {
    name: t.name,
    pkg: t.pkg,
    seconds: pcm.length / SAMPLE_RATE,
    embedMs,
    track: { vector: [...e.track.vector], tags: [...e.track.tags], mfcc: meanStd(coeffs, 0, coeffs.frames), layers: e.track.layers },
    chunks: e.chunks.map((ch) => {
      const a = Math.floor((ch.startSeconds * SAMPLE_RATE) / MFCC_HOP);
      const b = Math.min(coeffs.frames, Math.ceil(((ch.startSeconds + ch.seconds) * SAMPLE_RATE) / MFCC_HOP));
      return { start: ch.startSeconds, vector: [...ch.vector], tags: [...ch.tags], mfcc: meanStd(coeffs, a, b), layers: ch.layers };
    }),
  };
  const stored: StoredTrack = {
    ...c,
    track: { ...c.track, layers: toBase64(c.track.layers) },
    chunks: c.chunks.map((ch) => ({ ...ch, layers: toBase64(ch.layers) })),
  };
  const dir = cacheDir(embedder.model().id);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${t.name}.json`);
  await writeFile(`${file}.part`, JSON.stringify(stored));
  await rename(`${file}.part`, file);
  return c;
}

// MFCC as commonly computed for music similarity baselines: 32 ms frames at 16 ms hop, 40 mel
// bands to 8 kHz, log power, DCT-II, the first 13 coefficients.
const MFCC_HOP = 256;
const N_MELS = 40;
const N_COEFFS = 13;
const mel = new MelSpectrogram({ sampleRate: SAMPLE_RATE, nFft: 512, hop: MFCC_HOP, nMels: N_MELS, fMin: 0, fMax: 8000 });
const dct = Float64Array.from({ length: N_COEFFS * N_MELS }, (_, i) => {
  const k = Math.floor(i / N_MELS);
  const m = i % N_MELS;
  return Math.cos((Math.PI * k * (m + 0.5)) / N_MELS);
});

function mfcc(pcm: Float32Array): { data: Float64Array; frames: number } {
  const power = mel.compute(pcm);
  const frames = power.length / N_MELS;
  const data = new Float64Array(frames * N_COEFFS);
  const logMel = new Float64Array(N_MELS);
  for (let f = 0; f < frames; f++) {
    for (let m = 0; m < N_MELS; m++) logMel[m] = Math.log(power[f * N_MELS + m]! + 1e-10);
    for (let k = 0; k < N_COEFFS; k++) {
      let s = 0;
      for (let m = 0; m < N_MELS; m++) s += dct[k * N_MELS + m]! * logMel[m]!;
      data[f * N_COEFFS + k] = s;
    }
  }
  return { data, frames };
}

function meanStd(c: { data: Float64Array }, from: number, to: number): number[] {
  const n = Math.max(1, to - from);
  const mean = new Float64Array(N_COEFFS);
  const sq = new Float64Array(N_COEFFS);
  for (let f = from; f < to; f++) {
    for (let k = 0; k < N_COEFFS; k++) {
      const x = c.data[f * N_COEFFS + k]!;
      mean[k]! += x;
      sq[k]! += x * x;
    }
  }
  const out: number[] = [];
  for (let k = 0; k < N_COEFFS; k++) out.push(mean[k]! / n);
  for (let k = 0; k < N_COEFFS; k++) out.push(Math.sqrt(Math.max(0, sq[k]! / n - (mean[k]! / n) ** 2)));
  return out;
}
