// bench:vibe's analysis model: MusiCNN converted from the lane's weights with other outputs. Its
// vector is the published 200-d embedding (the dense layer before its ReLU), its tags are the
// lane's, and per patch it gives the layer statistics vibe-layers.ts builds vectors from:
//   the time mean, standard deviation and maximum over the patch's frames of the layer the
//   temporal pooling reads (every frame's front-end and mid-end features), then the 200-unit
//   dense layer after its ReLU (musicnn's own 'penultimate' feature).
// The lane's vector is among those vectors (its pooling layer is the time maximum and mean of
// those frames, and its batch norm is affine), so the lane's model needs none of these outputs:
// this model is the bench's own file, run in the bench's own pool (vibe-layer-worker.ts).
import path from 'node:path';
import { Piscina } from 'piscina';
import { runTask } from '../src/base/channel.js';
import type { Config } from '../src/base/config.js';
import { meanRows, trackChunks, type ChunkEmbedding, type Embedder, type Embedding, type EmbeddingModel } from '../src/vibe/embedder.js';
import { MUSICNN_INPUT } from '../src/vibe/inputs.js';
import type { KerasLayer, KerasModel } from '../src/vibe/keras-h5.js';
import { convertedOnce, MUSICNN_MODEL, penultimateDense } from '../src/vibe/models.js';
import { attrInt, attrInts, convertGraph, encodeModel, type Graph, type Value } from '../src/vibe/onnx-from-keras.js';
import { CACHE_DIR } from '../tools/corpus.js';
import type { LayerTask, LayerUnits, LayerWorkerData } from './vibe-layer-worker.js';

/** The analysis model; bench:vibe's cache is keyed by its id. */
export const LAYER_MODEL: EmbeddingModel = { ...MUSICNN_MODEL, id: 'musicnn-msd', dim: 200 };
/** Where bench:vibe keeps its converted model: derived data beside its cache. */
export const LAYER_MODEL_DIR = path.join(CACHE_DIR, 'vibe-bench', 'models');

/** The model's outputs that make up `layers`, in this order. */
const TIME_STATS = 'time_stats';
const DENSE_RELU = 'dense_relu';

export interface LayerEmbedding extends Embedding {
  /** The mean over the patches of their layer statistics. */
  layers: Float32Array;
}
export type LayerChunkEmbedding = LayerEmbedding & ChunkEmbedding;
/** The lane's Embedder surface (the same chunks and means), with the layer statistics. */
export interface LayerEmbedder extends Embedder {
  embedTrack(pcm: Float32Array): Promise<{ chunks: LayerChunkEmbedding[]; track: LayerEmbedding }>;
  embedClip(pcm: Float32Array): Promise<LayerEmbedding>;
}

/** The analysis model's ONNX file in `dir`, converted once per weights file. */
export function layerModelOnnx(h5Path: string, dir = LAYER_MODEL_DIR): Promise<string> {
  return convertedOnce(h5Path, dir, 'musicnn-msd-layer-stats', layerModel);
}

function layerModel(keras: KerasModel): Uint8Array {
  const c = convertGraph(keras);
  const dense = c.layers.get(penultimateDense(keras.layers))!;
  const frames = c.layers.get(poolingInput(keras.layers))!.out;
  return encodeModel(c, [
    { name: 'embedding', value: dense.beforeActivation },
    { name: TIME_STATS, value: timeStatistics(c.graph, frames) },
    { name: DENSE_RELU, value: dense.out },
    { name: 'output', value: c.output },
  ]);
}

/** The layer MusiCNN's temporal max and mean pooling read: every frame's front-end and mid-end features. */
function poolingInput(layers: KerasLayer[]): string {
  const pools = layers.filter(
    (l) => l.className === 'TensorFlowOpLayer' && ['Max', 'Mean'].includes((l.config.node_def as { op?: string } | undefined)?.op ?? ''),
  );
  const inputs = new Set(pools.flatMap((l) => l.inbound));
  if (inputs.size !== 1) throw new Error(`expected one layer under the temporal pooling, found ${inputs.size}`);
  return [...inputs][0]!;
}

/** [batch, 3 * features]: mean, standard deviation and maximum over Keras axis 1 (time), each flattened in Keras order. */
function timeStatistics(g: Graph, x: Value): Value {
  if (x.order.length < 3) throw new Error('time statistics need a tensor with a time axis and features');
  const v = g.toOrder(
    x,
    Array.from(x.order, (_, i) => i),
  );
  const over = (op: string, input: string) => g.node(op, [input], [attrInts('axes', [1]), attrInt('keepdims', 0)]);
  const mean = over('ReduceMean', v.name);
  const meanSquare = over('ReduceMean', g.node('Mul', [v.name, v.name]));
  // E[x^2] - E[x]^2, floored at 0 against rounding, then its root.
  const variance = g.node('Relu', [g.node('Sub', [meanSquare, g.node('Mul', [mean, mean])])]);
  const parts = [mean, g.node('Sqrt', [variance]), over('ReduceMax', v.name)].map((p) => g.node('Flatten', [p], [attrInt('axis', 1)]));
  return { name: g.node('Concat', parts, [attrInt('axis', 1)]), order: [0, 1] };
}

/** The analysis model in a pool of config.vibeThreads workers, as the lane's pool is sized; its file converted into `dir`. */
export async function openLayerEmbedder(config: Config, dir = LAYER_MODEL_DIR): Promise<LayerEmbedder> {
  if (config.musicnnH5 === undefined) throw new Error('the analysis model needs the MusiCNN weights: set AUDIO_IDENT_MUSICNN_H5');
  const workerData: LayerWorkerData = { onnxPath: await layerModelOnnx(config.musicnnH5, dir), layerOutputs: [TIME_STATS, DENSE_RELU] };
  const threads = config.vibeThreads;
  const pool = new Piscina({
    filename: new URL('./vibe-layer-worker.js', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    workerData,
    idleTimeout: Number.POSITIVE_INFINITY,
  });
  const embedder = new LayerPool(pool);
  try {
    // As the lane's embedder opens: a silent patch loads a session and checks the output sizes.
    const e = await embedder.embedClip(new Float32Array(LAYER_MODEL.sampleRate * MUSICNN_INPUT.patchSeconds));
    if (e.vector.length !== LAYER_MODEL.dim || e.tags.length !== LAYER_MODEL.tagNames.length) {
      throw new Error(
        `the analysis model gives ${e.vector.length}-d vectors and ${e.tags.length} tags, not ${LAYER_MODEL.dim} and ${LAYER_MODEL.tagNames.length}`,
      );
    }
  } catch (e) {
    await pool.destroy();
    throw e;
  }
  return embedder;
}

class LayerPool implements LayerEmbedder {
  constructor(private readonly pool: Piscina) {}

  model(): EmbeddingModel {
    return LAYER_MODEL;
  }

  async embedTrack(pcm: Float32Array): Promise<{ chunks: LayerChunkEmbedding[]; track: LayerEmbedding }> {
    const units = await this.run(pcm);
    const chunks = trackChunks(units.starts, pcm.length / LAYER_MODEL.sampleRate, MUSICNN_INPUT.patchSeconds).map((c) => ({
      ...meanOf(units, c.units),
      startSeconds: c.startSeconds,
      seconds: c.seconds,
    }));
    return {
      chunks,
      track: meanOf(
        units,
        units.starts.map((_, i) => i),
      ),
    };
  }

  async embedClip(pcm: Float32Array): Promise<LayerEmbedding> {
    const units = await this.run(pcm);
    return meanOf(
      units,
      units.starts.map((_, i) => i),
    );
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }

  private run(pcm: Float32Array): Promise<LayerUnits> {
    // The worker owns its copy: the caller's buffer may be a view it goes on using.
    const copy = pcm.slice();
    return runTask<LayerTask, LayerUnits>(this.pool, { pcm: copy }, [copy.buffer]);
  }
}

function meanOf(units: LayerUnits, which: number[]): LayerEmbedding {
  return {
    vector: meanRows(units.vectors, LAYER_MODEL.dim, which),
    tags: meanRows(units.tags, LAYER_MODEL.tagNames.length, which),
    layers: meanRows(units.layers, units.layerDim, which),
  };
}
