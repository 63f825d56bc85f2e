// What the vibe lane compares: the vector made from a model's raw outputs (its dense layer, its
// tag probabilities). The choice is measured by bench/vibe.ts; the store holds these vectors, so
// changing this function changes the space's id suffix and needs a re-embedding.
import type { Embedding } from './embedder.js';

export const SEARCH_VECTOR = { suffix: '' };

/** The unit-length dense-layer vector: cosine of the plain mean of patches. */
export function searchVector(e: Embedding, _tagCount: number): Float32Array {
  return unit(e.vector);
}

export function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const s = n > 0 ? 1 / Math.sqrt(n) : 0;
  return v.map((x) => x * s);
}
