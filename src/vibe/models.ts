// Which model the vibe lane runs and the ONNX file it runs from: MusiCNN converted once from its
// Keras HDF5 weights into the data dir (keyed by the weights' sha256), or the operator's CLAP
// file, whose sha256 must match the configured one.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../base/config.js';
import { log } from '../base/log.js';
import type { EmbeddingModel } from './embedder.js';
import { CLAP_INPUT, MUSICNN_INPUT } from './inputs.js';
import { readKerasH5, type KerasLayer } from './keras-h5.js';
import { kerasToOnnx, layerOutput, timeStatsOutput } from './onnx-from-keras.js';

/** The 50 Million Song Dataset tags MusiCNN (MSD) was trained on, in its output order. */
export const MSD_TAGS = [
  'rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s', 'alternative rock', 'jazz',
  'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul', 'indie rock', 'Mellow', 'electronica', '80s',
  'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies', 'blues', 'hard rock', 'ambient', 'acoustic',
  'experimental', 'female vocalist', 'guitar', 'Hip-Hop', '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy',
  'funk', 'electro', 'heavy metal', 'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy',
] as const;

/** The lane's MusiCNN vector: its batch-normalised pooling layer (the input of its embedding layer). */
export const MUSICNN_MODEL: EmbeddingModel = { id: 'musicnn-msd-pool', dim: 1506, sampleRate: MUSICNN_INPUT.sampleRate, tagNames: MSD_TAGS };
/** bench:vibe's analysis model: the 200-d embedding, with the layer statistics (see PrepareOptions). */
export const MUSICNN_EMBEDDING_MODEL: EmbeddingModel = { ...MUSICNN_MODEL, id: 'musicnn-msd', dim: 200 };
export const CLAP_MODEL: EmbeddingModel = { id: 'clap-htsat-unfused', dim: 512, sampleRate: CLAP_INPUT.sampleRate, tagNames: [] };

export type ModelKind = 'musicnn' | 'clap';

export interface PreparedModel {
  kind: ModelKind;
  model: EmbeddingModel;
  onnxPath: string;
  /** Length of the model's input unit (a MusiCNN patch, a CLAP window). */
  unitSeconds: number;
  /** Outputs the worker returns per unit besides the vector and the tags (see PrepareOptions.layerStatistics). */
  extraOutputs: string[];
}

export interface PrepareOptions {
  /**
   * MusiCNN only, bench:vibe's analysis model: the 200-d embedding as the vector, and as extra
   * outputs the time statistics (mean, deviation, maximum over a patch's frames) of the layer its
   * temporal pooling reads, the front-end and mid-end features of every frame, then the
   * embedding's dense layer after its ReLU (musicnn's own 'penultimate' feature). bench:vibe
   * builds vectors from them, the lane's among them (its pooling layer is the time maximum and
   * mean of those frames, and its batch norm is affine). A separate model file.
   */
  layerStatistics?: boolean;
}

export async function prepareModel(config: Config, options: PrepareOptions = {}): Promise<PreparedModel | { reason: string }> {
  if (config.vibeModel === 'off') return { reason: 'the vibe lane is off (AUDIO_IDENT_VIBE_MODEL=off)' };
  if (config.vibeModel === 'clap') return prepareClap(config);
  const h5 = config.musicnnH5;
  if (h5 === undefined || !existsSync(h5)) {
    return {
      reason:
        h5 === undefined
          ? 'the vibe lane would run MusiCNN (MSD) but has no weights: set AUDIO_IDENT_MUSICNN_H5 to MSD_musicnn.h5'
          : `the vibe lane would run MusiCNN (MSD) but its weights are missing: ${h5}`,
    };
  }
  const layerStatistics = options.layerStatistics === true;
  return {
    kind: 'musicnn',
    model: layerStatistics ? MUSICNN_EMBEDDING_MODEL : MUSICNN_MODEL,
    onnxPath: await musicnnOnnx(h5, config.dataDir, { layerStatistics }),
    unitSeconds: MUSICNN_INPUT.patchSeconds,
    extraOutputs: layerStatistics ? layerStatisticsOutputs(readKerasH5(await readFile(h5)).layers) : [],
  };
}

function layerStatisticsOutputs(layers: KerasLayer[]): string[] {
  return [timeStatsOutput(poolingInput(layers)), layerOutput(penultimateDense(layers))];
}

/**
 * The converted MusiCNN model under DATA/models, written once per distinct weights file; with
 * layer statistics under another name, since its outputs differ.
 */
export async function musicnnOnnx(h5Path: string, dataDir: string, options: PrepareOptions = {}): Promise<string> {
  const bytes = await readFile(h5Path);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const dir = path.join(dataDir, 'models');
  const out = path.join(dir, `${options.layerStatistics === true ? 'musicnn-msd-layer-stats' : MUSICNN_MODEL.id}-${sha}.onnx`);
  if (existsSync(out)) return out;
  const started = performance.now();
  const keras = readKerasH5(bytes);
  const onnx = kerasToOnnx(keras, {
    embeddingLayer: options.layerStatistics === true ? penultimateDense(keras.layers) : poolingNormalised(keras.layers),
    timeStatistics: options.layerStatistics === true ? [poolingInput(keras.layers)] : [],
    layerOutputs: options.layerStatistics === true ? [penultimateDense(keras.layers)] : [],
  });
  await mkdir(dir, { recursive: true });
  // Written beside and renamed, so a crash never leaves a truncated model under the final name.
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, onnx);
  await rename(tmp, out);
  log.info('converted MusiCNN weights to ONNX', { from: h5Path, to: out, ms: Math.round(performance.now() - started) });
  return out;
}

/**
 * MusiCNN's published embedding is the 200-unit dense layer before its ReLU (the layer before the
 * tag layer; 'model/dense/BiasAdd' in Essentia's extractor). Taken before the ReLU it keeps the
 * negative half the ReLU would zero.
 */
function penultimateDense(layers: { className: string; name: string }[]): string {
  const dense = layers.filter((l) => l.className === 'Dense');
  const layer = dense.at(-2);
  if (!layer) throw new Error('the model has no dense layer before its output layer');
  return layer.name;
}

/** The batch-normalised pooling layer: the embedding layer's input, dropout (the identity at inference) aside. */
function poolingNormalised(layers: KerasLayer[]): string {
  let name = layers.find((l) => l.name === penultimateDense(layers))!.inbound[0];
  for (let l = layers.find((x) => x.name === name); l?.className === 'Dropout'; l = layers.find((x) => x.name === name)) name = l.inbound[0];
  const layer = layers.find((l) => l.name === name);
  if (layer?.className !== 'BatchNormalization') throw new Error(`the embedding layer reads ${name ?? 'nothing'}, not a batch normalisation of the pooling layer`);
  return layer.name;
}

/** The layer MusiCNN's temporal max and mean pooling read: every frame's front-end and mid-end features. */
function poolingInput(layers: KerasLayer[]): string {
  const pools = layers.filter((l) => l.className === 'TensorFlowOpLayer' && ['Max', 'Mean'].includes((l.config['node_def'] as { op?: string } | undefined)?.op ?? ''));
  const inputs = new Set(pools.flatMap((l) => l.inbound));
  if (inputs.size !== 1) throw new Error(`expected one layer under the temporal pooling, found ${inputs.size}`);
  return [...inputs][0]!;
}

async function prepareClap(config: Config): Promise<PreparedModel | { reason: string }> {
  const file = config.clapOnnx;
  if (file === undefined) return { reason: 'the vibe lane would run CLAP but has no model: set AUDIO_IDENT_CLAP_ONNX and AUDIO_IDENT_CLAP_SHA256' };
  if (config.clapSha256 === undefined) return { reason: 'AUDIO_IDENT_CLAP_SHA256 is required with AUDIO_IDENT_CLAP_ONNX' };
  if (!existsSync(file)) return { reason: `the vibe lane would run CLAP but its model is missing: ${file}` };
  // Streamed: a CLAP audio encoder is a few hundred MB.
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  const sha = hash.digest('hex');
  if (sha !== config.clapSha256) return { reason: `the CLAP model ${file} has sha256 ${sha}, not the configured ${config.clapSha256}` };
  return { kind: 'clap', model: CLAP_MODEL, onnxPath: file, unitSeconds: CLAP_INPUT.windowSeconds, extraOutputs: [] };
}
