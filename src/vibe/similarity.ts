// What the vibe lane compares: the unit-length dense-layer vector (cosine of the plain mean of
// patches). bench/vibe.ts measured normalisations, whitening, pooling, tags and neighbourhood
// re-ranking (query expansion, database-side augmentation, shared neighbours) against it on the
// full corpus; none separated from it by more than the noise (README, "Vibe benchmark"). The
// store holds these vectors: a different choice here is a different space and needs a
// re-embedding.
import type { Embedding } from './embedder.js';

export function searchVector(e: Embedding): Float32Array {
  let n = 0;
  for (const x of e.vector) n += x * x;
  const s = n > 0 ? 1 / Math.sqrt(n) : 0;
  return e.vector.map((x) => x * s);
}
