// A piscina worker for bench:vibe's analysis model (vibe-layer-model.ts): MusiCNN patches one at
// a time through a single-threaded onnxruntime session, as the lane's workers run them
// (embed-worker.ts), so that the two models' costs compare.
import * as ort from 'onnxruntime-node';
import { workerData } from 'node:worker_threads';
import { concatFloat32 } from '../src/base/arrays.js';
import { task } from '../src/base/channel.js';
import { lazySession } from '../src/vibe/session.js';
import { musicnnPatches } from '../src/vibe/inputs.js';

export interface LayerWorkerData {
  onnxPath: string;
  /** Outputs concatenated per patch into `layers`, in this order. */
  layerOutputs: string[];
}
export interface LayerTask {
  pcm: Float32Array;
}
/** Per patch, row by row: its start (seconds), 200-d vector, tags and layer statistics. */
export interface LayerUnits {
  starts: number[];
  vectors: Float32Array;
  tags: Float32Array;
  layerDim: number;
  layers: Float32Array;
}

const data = workerData as LayerWorkerData;
const session = lazySession(data.onnxPath);

export default task(async (job: LayerTask): Promise<LayerUnits> => {
  const s = await session();
  const units = musicnnPatches(job.pcm);
  const size = units.shape.slice(1).reduce((a, b) => a * b, 1);
  const vectors: Float32Array[] = [];
  const tags: Float32Array[] = [];
  const layers: Float32Array[] = [];
  for (let p = 0; p < units.starts.length; p++) {
    const input = new ort.Tensor('float32', units.data.subarray(p * size, (p + 1) * size), [1, ...units.shape.slice(1)]);
    const out = await s.run({ [s.inputNames[0]!]: input });
    vectors.push(out.embedding!.data as Float32Array);
    tags.push(out.output!.data as Float32Array);
    for (const name of data.layerOutputs) layers.push(out[name]!.data as Float32Array);
  }
  const l = concatFloat32(layers);
  return { starts: units.starts, vectors: concatFloat32(vectors), tags: concatFloat32(tags), layerDim: l.length / units.starts.length, layers: l };
});
