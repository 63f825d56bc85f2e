// A piscina worker: one onnxruntime-node session (single-threaded: the pool is the parallelism)
// that turns PCM into per-unit outputs (MusiCNN patches or CLAP windows). The front end runs
// here too, so the event loop only copies buffers.
import * as ort from 'onnxruntime-node';
import { workerData } from 'node:worker_threads';
import { concatFloat32 } from '../base/arrays.js';
import { task } from '../base/channel.js';
import { lazySession } from './session.js';
import { clapWindows, musicnnPatches, type Units } from './inputs.js';
import type { ModelKind } from './models.js';

export interface WorkerData {
  kind: ModelKind;
  onnxPath: string;
}
export interface WorkerTask {
  pcm: Float32Array;
}
export interface UnitOutputs {
  count: number;
  /** Start of each unit in the signal, seconds. */
  starts: number[];
  dim: number;
  vectors: Float32Array;
  tagCount: number;
  tags: Float32Array;
}

/**
 * Units per session run. onnxruntime convolves the items of a batch one after another, so a
 * batch saves only the call, while each MusiCNN patch holds ~10 MB of activations: measured
 * with bench:embed, one at a time was as fast as two (38 vs 36x real time per CPU-second) and
 * kept the worker ~85 MB smaller.
 */
const BATCH = 1;

const data = workerData as WorkerData;
const session = lazySession(data.onnxPath);

export default task(async (job: WorkerTask): Promise<UnitOutputs> => {
  const s = await session();
  const units: Units = data.kind === 'musicnn' ? musicnnPatches(job.pcm) : clapWindows(job.pcm);
  const count = units.starts.length;
  const unitSize = units.shape.slice(1).reduce((a, b) => a * b, 1);
  const vectorName = data.kind === 'musicnn' ? 'embedding' : s.outputNames.includes('audio_embeds') ? 'audio_embeds' : s.outputNames[0]!;
  const tagName = data.kind === 'musicnn' ? 'output' : undefined;
  const vectors: Float32Array[] = [];
  const tags: Float32Array[] = [];
  for (let first = 0; first < count; first += BATCH) {
    const n = Math.min(BATCH, count - first);
    const input = new ort.Tensor('float32', units.data.subarray(first * unitSize, (first + n) * unitSize), [n, ...units.shape.slice(1)]);
    const out = await s.run({ [s.inputNames[0]!]: input });
    vectors.push(out[vectorName]!.data as Float32Array);
    if (tagName) tags.push(out[tagName]!.data as Float32Array);
  }
  const v = concatFloat32(vectors);
  const t = concatFloat32(tags);
  const result: UnitOutputs = { count, starts: units.starts, dim: v.length / count, vectors: v, tagCount: t.length / count, tags: t };
  return result;
});
