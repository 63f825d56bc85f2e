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
import { readKerasH5, type KerasLayer, type KerasModel } from './keras-h5.js';
import { kerasToOnnx } from './onnx-from-keras.js';

/** The 50 Million Song Dataset tags MusiCNN (MSD) was trained on, in its output order. */
// biome-ignore format: a table of 50 names, ten to a line
export const MSD_TAGS = [
  'rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s', 'alternative rock', 'jazz',
  'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul', 'indie rock', 'Mellow', 'electronica', '80s',
  'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies', 'blues', 'hard rock', 'ambient', 'acoustic',
  'experimental', 'female vocalist', 'guitar', 'Hip-Hop', '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy',
  'funk', 'electro', 'heavy metal', 'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy',
] as const;

/** The lane's MusiCNN vector: its batch-normalised pooling layer (the input of its embedding layer). */
export const MUSICNN_MODEL: EmbeddingModel = { id: 'musicnn-msd-pool', dim: 1506, sampleRate: MUSICNN_INPUT.sampleRate, tagNames: MSD_TAGS };
export const CLAP_MODEL: EmbeddingModel = { id: 'clap-htsat-unfused', dim: 512, sampleRate: CLAP_INPUT.sampleRate, tagNames: [] };

export type ModelKind = 'musicnn' | 'clap';

export interface PreparedModel {
  kind: ModelKind;
  model: EmbeddingModel;
  onnxPath: string;
  /** Length of the model's input unit (a MusiCNN patch, a CLAP window). */
  unitSeconds: number;
}

export async function prepareModel(config: Config): Promise<PreparedModel | { reason: string }> {
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
  return { kind: 'musicnn', model: MUSICNN_MODEL, onnxPath: await musicnnOnnx(h5, config.dataDir), unitSeconds: MUSICNN_INPUT.patchSeconds };
}

/** The converted MusiCNN model under DATA/models, written once per distinct weights file. */
export function musicnnOnnx(h5Path: string, dataDir: string): Promise<string> {
  return convertedOnce(h5Path, path.join(dataDir, 'models'), MUSICNN_MODEL.id, (keras) =>
    kerasToOnnx(keras, { embeddingLayer: poolingNormalised(keras.layers) }),
  );
}

/**
 * `convert` of the Keras weights, as `dir/<name>-<sha256 of the weights>.onnx`: converted only
 * when that file is missing, so one file per distinct weights file and model.
 */
export async function convertedOnce(h5Path: string, dir: string, name: string, convert: (keras: KerasModel) => Uint8Array): Promise<string> {
  const bytes = await readFile(h5Path);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const out = path.join(dir, `${name}-${sha}.onnx`);
  if (existsSync(out)) return out;
  const started = performance.now();
  const onnx = convert(readKerasH5(bytes));
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
export function penultimateDense(layers: { className: string; name: string }[]): string {
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
  if (layer?.className !== 'BatchNormalization')
    throw new Error(`the embedding layer reads ${name ?? 'nothing'}, not a batch normalisation of the pooling layer`);
  return layer.name;
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
  return { kind: 'clap', model: CLAP_MODEL, onnxPath: file, unitSeconds: CLAP_INPUT.windowSeconds };
}
