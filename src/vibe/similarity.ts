// What the vibe lane compares: the unit-length dense-layer vector (cosine of the plain mean of
// patches). bench/vibe.ts measured normalisations, whitening, pooling, tags, other layers and
// neighbourhood re-ranking against it on the full corpus (README, "Vibe benchmark"). Only the
// pooling layer centred on the catalog's mean, with query expansion, did clearly better. It needs
// stores that re-centre as the catalog grows, which they do not do yet. The store holds these
// vectors: a different choice here is a different space and needs a re-embedding.
import type { Embedding } from './embedder.js';

export function searchVector(e: Embedding): Float32Array {
  let n = 0;
  for (const x of e.vector) n += x * x;
  const s = n > 0 ? 1 / Math.sqrt(n) : 0;
  return e.vector.map((x) => x * s);
}
