// The onnxruntime session of an embedding worker thread: single-threaded, as the pool of threads
// is the parallelism, and created at the thread's first task.
import * as ort from 'onnxruntime-node';

export function lazySession(onnxPath: string): () => Promise<ort.InferenceSession> {
  let session: Promise<ort.InferenceSession> | undefined;
  return () =>
    (session ??= ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    }));
}
