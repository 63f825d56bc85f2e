// The vibe lane's models behind one surface: the configured model (MusiCNN converted from its
// Keras weights, or an operator's CLAP ONNX file) run by onnxruntime-node in a piscina pool.
// Callers hand PCM at model.sampleRate and get raw model outputs; comparing them is theirs.
import os from 'node:os';
import { Piscina } from 'piscina';
import type { Config } from '../base/config.js';
import { runTask } from '../base/channel.js';
import { AppError } from '../base/errors.js';
import { log } from '../base/log.js';
import type { UnitOutputs, WorkerData, WorkerTask } from './embed-worker.js';
import { windowStarts } from './inputs.js';
import { prepareModel, type PreparedModel } from './models.js';

export interface EmbeddingModel {
  id: string; // e.g. 'musicnn-msd-pool' or 'clap-htsat-unfused'; stored with every vector
  dim: number; // 1506 for the lane's MusiCNN vector
  sampleRate: number; // PCM rate the embedder takes: 16000 for MusiCNN (same PCM as the fingerprints)
  tagNames: readonly string[]; // MusiCNN's 50 MSD tags in output order; [] for a model without tags
}
export interface Embedding {
  vector: Float32Array;
  tags: Float32Array /* probabilities, tagNames order */;
}
export interface ChunkEmbedding extends Embedding {
  startSeconds: number;
  seconds: number;
}
export interface Embedder {
  model(): EmbeddingModel;
  /** A whole track: chunk embeddings (10 s windows, 5 s hop, each the mean of its 3 s patches) and a track embedding. */
  embedTrack(pcm: Float32Array): Promise<{ chunks: ChunkEmbedding[]; track: Embedding }>;
  /** One embedding for a clip (mean of its 3 s patches): a search upload or a live 10 s window. */
  embedClip(pcm: Float32Array): Promise<Embedding>;
  close(): Promise<void>;
}

/** Chunks of a track: 10 s windows every 5 s. */
export const CHUNK_SECONDS = 10;
export const CHUNK_HOP_SECONDS = 5;

/** The configured model run in a piscina pool of onnxruntime-node sessions, or why there is none. */
export async function openEmbedder(config: Config): Promise<{ embedder: Embedder } | { embedder: undefined; reason: string }> {
  let prepared: PreparedModel;
  try {
    const p = await prepareModel(config);
    if ('reason' in p) return { embedder: undefined, reason: p.reason };
    prepared = p;
  } catch (e) {
    const reason = `vibe model ${config.vibeModel} could not be prepared: ${(e as Error).message}`;
    log.error('vibe model unavailable', { model: config.vibeModel, error: (e as Error).message });
    return { embedder: undefined, reason };
  }
  const threads = config.vibeThreads;
  const workerData: WorkerData = { kind: prepared.kind, onnxPath: prepared.onnxPath };
  const pool = new Piscina({
    filename: new URL('./embed-worker.js', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    workerData,
    // A worker that idles keeps its session: reloading it costs more than the memory saved.
    idleTimeout: Number.POSITIVE_INFINITY,
  });
  const embedder = new PooledEmbedder(prepared, pool);
  try {
    // A short silent clip loads the session in a worker and checks its output sizes, so a
    // broken model file is reported here and not at the first search.
    await embedder.embedClip(new Float32Array(prepared.model.sampleRate * prepared.unitSeconds));
  } catch (e) {
    await pool.destroy();
    const reason = `vibe model ${prepared.model.id} failed to load: ${(e as Error).message}`;
    log.error('vibe model unavailable', { model: prepared.model.id, error: (e as Error).message });
    return { embedder: undefined, reason };
  }
  log.info('vibe model loaded', { model: prepared.model.id, dim: prepared.model.dim, threads, cores: os.availableParallelism() });
  return { embedder };
}

class PooledEmbedder implements Embedder {
  private readonly info: EmbeddingModel;
  private closed = false;

  constructor(
    private readonly prepared: PreparedModel,
    private readonly pool: Piscina,
  ) {
    this.info = prepared.model;
  }

  model(): EmbeddingModel {
    return this.info;
  }

  async embedTrack(pcm: Float32Array): Promise<{ chunks: ChunkEmbedding[]; track: Embedding }> {
    const units = await this.run(pcm);
    const { dim } = this.info;
    const tagCount = this.info.tagNames.length;
    const seconds = pcm.length / this.info.sampleRate;
    const chunks = trackChunks(units.starts, seconds, this.prepared.unitSeconds).map((c) => ({
      ...meanOf(units, c.units, dim, tagCount),
      startSeconds: c.startSeconds,
      seconds: c.seconds,
    }));
    const all = Array.from({ length: units.count }, (_, i) => i);
    return { chunks, track: meanOf(units, all, dim, tagCount) };
  }

  async embedClip(pcm: Float32Array): Promise<Embedding> {
    const units = await this.run(pcm);
    const all = Array.from({ length: units.count }, (_, i) => i);
    return meanOf(units, all, this.info.dim, this.info.tagNames.length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }

  private async run(pcm: Float32Array): Promise<UnitOutputs> {
    if (this.closed) throw new AppError('LANE_UNAVAILABLE', 'the embedder is closed');
    if (pcm.length === 0) throw new AppError('AUDIO_TOO_SHORT', 'no audio to embed');
    // The worker owns its copy: the caller's buffer may be a view it goes on using.
    const copy = pcm.slice();
    const task: WorkerTask = { pcm: copy };
    const out = await runTask<WorkerTask, UnitOutputs>(this.pool, task, [copy.buffer]);
    if (out.dim !== this.info.dim || out.tagCount !== this.info.tagNames.length) {
      throw new Error(`the model gives ${out.dim}-d vectors and ${out.tagCount} tags; ${this.info.id} has ${this.info.dim} and ${this.info.tagNames.length}`);
    }
    return out;
  }
}

/**
 * A track's chunks (see CHUNK_SECONDS) and the units inside each, for units `unitSeconds` long
 * starting at `starts`; a chunk with no unit inside is left out.
 */
export function trackChunks(starts: number[], seconds: number, unitSeconds: number): { startSeconds: number; seconds: number; units: number[] }[] {
  const chunks: { startSeconds: number; seconds: number; units: number[] }[] = [];
  for (const start of windowStarts(seconds, CHUNK_SECONDS, CHUNK_HOP_SECONDS)) {
    const end = Math.min(seconds, start + CHUNK_SECONDS);
    const inside: number[] = [];
    for (let u = 0; u < starts.length; u++) {
      const a = starts[u]!;
      // A unit belongs to a window when it lies inside it; a clip shorter than one unit has
      // one zero-padded unit, which belongs to its only window.
      if (a >= start - 1e-6 && (a + unitSeconds <= end + 1e-6 || starts.length === 1)) inside.push(u);
    }
    if (inside.length > 0) chunks.push({ startSeconds: start, seconds: end - start, units: inside });
  }
  return chunks;
}

/** The mean of some units' vectors and tag probabilities. */
function meanOf(units: UnitOutputs, which: number[], dim: number, tagCount: number): Embedding {
  return { vector: meanRows(units.vectors, dim, which), tags: meanRows(units.tags, tagCount, which) };
}

/** The mean of some rows of a row-major matrix `width` wide, summed in float64. */
export function meanRows(rows: Float32Array, width: number, which: number[]): Float32Array {
  const acc = new Float64Array(width);
  for (const u of which) for (let i = 0; i < width; i++) acc[i]! += rows[u * width + i]!;
  return Float32Array.from(acc, (x) => x / which.length);
}
