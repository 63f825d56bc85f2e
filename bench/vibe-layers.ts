// bench:vibe's study of vectors from MusiCNN's other layers, with the protocol of vibe-eval.ts
// (same queries, the query's track excluded, closest-chunk ranking for chunk queries, statistics
// fitted on the catalog, never on labels). The cache holds, per track vector and chunk, the mean
// over its patches of the analysis model's layer statistics (vibe-layer-model.ts):
//   [0, 753)      mean over the patch's frames of the layer the temporal pooling reads,
//   [753, 1506)   their standard deviation over the frames,
//   [1506, 2259)  their maximum over the frames,
//   [2259, 2459)  the 200-unit dense layer after its ReLU (musicnn's 'penultimate' feature).
// The 753 features of a frame are, in the model's concatenation order: the two timbral branches
// (7x38 and 7x67 kernels, 204 filters each, max-pooled over frequency), the three temporal
// branches (128, 64 and 32 frames, 51 filters each), then the three mid-end layers (64 each; the
// second and third with their residual sums). The model's own pooling layer is the time max and
// mean of these, interleaved per feature (max, mean), then batch-normalised into the dense layer:
// checkDenseLayer confirms that layout against the cached 200-d vectors before anything is ranked.
import { readFileSync } from 'node:fs';
import type { Embedder } from '../src/vibe/embedder.js';
import { readKerasH5 } from '../src/vibe/keras-h5.js';
import { median, pairedText } from './stats.js';
import type { CachedItem, CachedTrack } from './vibe-cache.js';
import { centred, concat, evaluate, PLAIN, raw, standardised, vec, type EvalRow, type Method } from './vibe-eval.js';
import type { LayerEmbedder } from './vibe-layer-model.js';
import type { Space } from './vibe-rerank.js';

const FEATURES = 753;
const MEAN = 0;
const DEVIATION = FEATURES;
const MAX = 2 * FEATURES;
const RELU_DENSE = 3 * FEATURES;
const LAYER_DIM = RELU_DENSE + 200;

/** Feature ranges of a frame, [from, to). */
const BRANCHES = {
  timbral: [0, 408],
  temporal: [408, 561],
  midEnd: [561, 753],
} as const satisfies Record<string, readonly [number, number]>;
const FRONT_END = [0, 561] as const;
const LAST_MID_END = [689, 753] as const;

type Range = readonly [number, number];
/** Some statistics of a range of features, side by side. */
const features =
  (statistics: number[], [from, to]: Range = [0, FEATURES]) =>
  (x: CachedItem) => {
    const out = new Float32Array(statistics.length * (to - from));
    statistics.forEach((s, k) => out.set(x.layers.subarray(s + from, s + to), k * (to - from)));
    return out;
  };
const pool = (range: Range = [0, FEATURES]) => features([MAX, MEAN], range);
const reluDense = (x: CachedItem) => x.layers.subarray(RELU_DENSE, RELU_DENSE + 200);

/** The weights that turn the pooling layer into the 200-d embedding: its batch norm, then the dense layer. */
interface Head {
  /** Per interleaved feature (max, mean): scale and shift of the batch norm. */
  scale: Float64Array;
  shift: Float64Array;
  /** The same without the learnt shift (beta): centred on the training set's mean, a constant of the model. */
  unshifted: Float64Array;
  kernel: Float32Array;
  bias: Float32Array;
}

export function readHead(h5Path: string): Head {
  const model = readKerasH5(readFileSync(h5Path));
  const bnLayer = model.layers.find((l) => l.name === 'bn_flatpool');
  const bn = model.weights.get('bn_flatpool');
  const dense = model.weights.get('dense');
  if (!bnLayer || !bn || !dense) throw new Error('the MusiCNN weights lack bn_flatpool or dense');
  const eps = bnLayer.config.epsilon as number;
  const w = (m: Map<string, { data: Float32Array }>, role: string) => {
    const x = m.get(role);
    if (!x) throw new Error(`weight ${role} is missing`);
    return x.data;
  };
  const [mean, variance, gamma, beta] = ['moving_mean', 'moving_variance', 'gamma', 'beta'].map((r) => w(bn, r));
  const scale = Float64Array.from(gamma!, (g, i) => g / Math.sqrt(variance![i]! + eps));
  const shift = Float64Array.from(beta!, (b, i) => b - mean![i]! * scale[i]!);
  const unshifted = Float64Array.from(mean!, (m, i) => -m * scale[i]!);
  return { scale, shift, unshifted, kernel: w(dense, 'kernel'), bias: w(dense, 'bias') };
}

/** The pooling layer as the dense layer sees it, for a range of features: (max, mean) per feature, batch-normalised. */
function pooledNormalised(head: Head, x: CachedItem, [from, to]: Range = [0, FEATURES], shift = head.shift): Float64Array {
  const out = new Float64Array(2 * (to - from));
  for (let c = from; c < to; c++) {
    const o = 2 * (c - from);
    out[o] = x.layers[MAX + c]! * head.scale[2 * c]! + shift[2 * c]!;
    out[o + 1] = x.layers[MEAN + c]! * head.scale[2 * c + 1]! + shift[2 * c + 1]!;
  }
  return out;
}

/**
 * The cached 200-d vectors must be the dense layer applied to the cached pooling statistics (a
 * mean of patches commutes with the affine head): a check of the layout above and of the cache.
 * Returns the largest deviation relative to the largest component.
 */
export function checkDenseLayer(head: Head, tracks: CachedTrack[]): number {
  let worst = 0;
  for (const t of tracks) {
    if (t.track.layers.length !== LAYER_DIM) throw new Error(`${t.name}: ${t.track.layers.length} layer values, expected ${LAYER_DIM}`);
    const x = pooledNormalised(head, t.track);
    let scale = 0;
    let dev = 0;
    for (let j = 0; j < 200; j++) {
      let s = head.bias[j]!;
      for (let i = 0; i < x.length; i++) s += x[i]! * head.kernel[i * 200 + j]!;
      scale = Math.max(scale, Math.abs(t.track.vector[j]!));
      dev = Math.max(dev, Math.abs(s - t.track.vector[j]!));
    }
    worst = Math.max(worst, dev / scale);
  }
  if (worst > 1e-3) throw new Error(`the layer statistics do not reproduce the 200-d vectors (relative deviation ${worst}): layout or cache is wrong`);
  return worst;
}

/** The lane's vector (MUSICNN_MODEL): the pooling layer batch-normalised, as the lane's model outputs it. */
export const laneVector = (head: Head) => (x: CachedItem) => Float32Array.from(pooledNormalised(head, x));

/**
 * The lane's model and the analysis model on one clip: the lane's vector must be laneVector of
 * the analysis model's layer statistics (the batch norm is affine, so it commutes with the mean
 * over patches). Returns the largest deviation relative to the largest component.
 */
export async function checkLaneVector(head: Head, lane: Embedder, layered: LayerEmbedder, clip: Float32Array): Promise<number> {
  const [a, b] = [await lane.embedClip(clip), await layered.embedClip(clip)];
  const ours = laneVector(head)({ vector: [...b.vector], tags: [...b.tags], mfcc: [], layers: b.layers });
  const scale = Math.max(...Array.from(a.vector, Math.abs));
  const dev = Math.max(...Array.from(a.vector, (x, i) => Math.abs(x - ours[i]!))) / scale;
  if (!(dev <= 1e-3)) throw new Error(`the lane's vectors are not the batch-normalised pooling statistics (relative deviation ${dev})`);
  return dev;
}

/** The pooling layer as the dense layer sees it, catalog mean removed. */
const poolingCentred = (head: Head): Method => centred((x) => pooledNormalised(head, x));
/** The pooling layer batch-normalised without its learnt shift: a fixed map, fitted on nothing. */
const poolingUnshifted = (head: Head): Method => raw((x) => pooledNormalised(head, x, [0, FEATURES], head.unshifted));

/** A method's vectors for re-ranking, fitted as evaluate() fits: on the track vectors for tracks, on the chunks for chunks. */
function space(method: Method): Space {
  return (tracks) => {
    const onTracks = method(tracks.map((t) => t.track));
    const onChunks = method(tracks.flatMap((t) => t.chunks));
    return { tracks: tracks.map((t) => onTracks(t.track)), chunks: tracks.map((t) => t.chunks.map(onChunks)) };
  };
}

/** The layer vectors worth re-ranking: the best of the table and the best that fits nothing. */
export function layerSpaces(head: Head): { name: string; space: Space }[] {
  return [
    { name: 'the pooling layer batch-normalised, catalog mean removed (1506-d)', space: space(poolingCentred(head)) },
    { name: 'the pooling layer batch-normalised without its shift (1506-d)', space: space(poolingUnshifted(head)) },
  ];
}

export interface LayerMethod {
  name: string;
  dim: number;
  method: Method;
}

export function layerMethods(head: Head): LayerMethod[] {
  const width = ([a, b]: Range) => b - a;
  const branchParts = Object.values(BRANCHES).map((r) => standardised(pool(r)));
  return [
    { name: PLAIN, dim: 200, method: raw(vec) },
    { name: '200-d standardised (catalog mean and deviation)', dim: 200, method: standardised(vec) },
    { name: "dense layer after its ReLU, mean of patches (musicnn's 'penultimate')", dim: 200, method: raw(reluDense) },
    { name: 'dense layer after its ReLU, standardised', dim: 200, method: standardised(reluDense) },
    { name: "pooling layer batch-normalised (the dense layer's input), cosine", dim: 1506, method: raw((x) => pooledNormalised(head, x)) },
    { name: 'pooling layer batch-normalised, mean removed', dim: 1506, method: poolingCentred(head) },
    { name: "pooling layer batch-normalised without its shift (the training set's mean removed), cosine", dim: 1506, method: poolingUnshifted(head) },
    { name: 'pooling layer (time max + mean), mean removed', dim: 1506, method: centred(pool()) },
    { name: 'pooling layer (time max + mean), standardised', dim: 1506, method: standardised(pool()) },
    { name: 'time mean, standardised', dim: 753, method: standardised(features([MEAN])) },
    { name: 'time max, standardised', dim: 753, method: standardised(features([MAX])) },
    { name: 'time mean + deviation, standardised', dim: 1506, method: standardised(features([MEAN, DEVIATION])) },
    { name: 'time mean + deviation + max, standardised', dim: 2259, method: standardised(features([MEAN, DEVIATION, MAX])) },
    { name: 'front end (timbral + temporal), max + mean, standardised', dim: 2 * width(FRONT_END), method: standardised(pool(FRONT_END)) },
    { name: 'timbral branches, max + mean, standardised', dim: 2 * width(BRANCHES.timbral), method: standardised(pool(BRANCHES.timbral)) },
    { name: 'temporal branches, max + mean, standardised', dim: 2 * width(BRANCHES.temporal), method: standardised(pool(BRANCHES.temporal)) },
    { name: 'mid-end (3 layers), max + mean, standardised', dim: 2 * width(BRANCHES.midEnd), method: standardised(pool(BRANCHES.midEnd)) },
    { name: 'mid-end (3 layers) batch-normalised, cosine', dim: 2 * width(BRANCHES.midEnd), method: raw((x) => pooledNormalised(head, x, BRANCHES.midEnd)) },
    { name: 'last mid-end layer, max + mean, standardised', dim: 2 * width(LAST_MID_END), method: standardised(pool(LAST_MID_END)) },
    { name: 'timbral + temporal + mid-end, each standardised and unit length', dim: 1506, method: concat(...branchParts) },
    { name: '200-d standardised + pooling layer standardised (each unit length)', dim: 1706, method: concat(standardised(vec), standardised(pool())) },
    {
      name: '200-d standardised + pooling layer batch-normalised (each unit length)',
      dim: 1706,
      method: concat(
        standardised(vec),
        raw((x) => pooledNormalised(head, x)),
      ),
    },
    {
      name: '200-d standardised + mid-end standardised (each unit length)',
      dim: 200 + 2 * width(BRANCHES.midEnd),
      method: concat(standardised(vec), standardised(pool(BRANCHES.midEnd))),
    },
    {
      name: '200-d standardised + time mean, deviation, max standardised',
      dim: 2459,
      method: concat(standardised(vec), standardised(features([MEAN, DEVIATION, MAX]))),
    },
    { name: '200-d standardised + timbral + temporal + mid-end (each part)', dim: 1706, method: concat(standardised(vec), ...branchParts) },
  ];
}

export interface LayerRow extends EvalRow {
  dim: number;
}

export function evaluateLayers(tracks: CachedTrack[], methods: LayerMethod[]): LayerRow[] {
  const rows = evaluate(
    tracks,
    methods.map((m) => [m.name, m.method]),
  );
  return rows.map((r, i) => ({ ...r, dim: methods[i]!.dim }));
}

export function printLayers(rows: LayerRow[], check: number): void {
  const plain = rows[0]!;
  console.log(
    `\nVectors from MusiCNN's other layers (the cached 200-d vectors agree with the dense layer of the cached pooling statistics to ` +
      `${check.toExponential(1)}); vs plain: mean per-query difference ± its paired standard error:\n`,
  );
  console.log(
    '| vectors | dim | whole track | vs plain | 10 s chunk -> closest chunk | vs plain | whole track: chunk mean+std | 10 s chunk -> track vector | ' +
      '10 s chunk -> 3 closest chunks |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.method} | ${r.dim} | ${r.whole.toFixed(3)} | ${pairedText(r.byQuery.whole, plain.byQuery.whole)} | ${r.chunkToChunks.toFixed(3)} | ` +
        `${pairedText(r.byQuery.chunkToChunks, plain.byQuery.chunkToChunks)} | ` +
        `${[r.wholePooled, r.chunkToTrack, r.chunkToTop3].map((x) => x.toFixed(3)).join(' | ')} |`,
    );
  }
}

/**
 * The extra cost of the layer outputs: the same clip embedded alternately by the lane's model and
 * by the one with layer statistics (same pool size, same front end), median ms per patch each.
 */
export async function layerCost(plain: Embedder, layered: Embedder, clip: Float32Array, patches: number, runs: number): Promise<void> {
  const times: { plain: number[]; layered: number[] } = { plain: [], layered: [] };
  for (let i = 0; i < runs; i++) {
    for (const [which, e] of [
      ['plain', plain],
      ['layered', layered],
    ] as const) {
      const started = performance.now();
      await e.embedClip(clip);
      times[which].push((performance.now() - started) / patches);
    }
  }
  const p = median(times.plain);
  const l = median(times.layered);
  console.log(
    `\nlayer outputs' cost: ${runs} alternating embeddings of a ${patches}-patch clip, median ms per patch (front end included): lane's model ` +
      `${p.toFixed(1)}, with layer statistics ${l.toFixed(1)} (${l >= p ? '+' : ''}${(l - p).toFixed(1)} ms, ${(((l - p) / p) * 100).toFixed(1)}%)`,
  );
}
