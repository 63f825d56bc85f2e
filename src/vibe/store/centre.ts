// Where the vibe lane's vectors are compared from: the mean of the stored vectors of a kind. The
// lane's vector (the batch-normalised pooling layer) only beats the plain embedding by the margin
// bench:vibe asks for once the catalog's mean is removed; the model's own training mean does not
// do it (bench:vibe's layer comparison, CHANGELOG.md). The mean moves as tracks come and go,
// and re-centring rebuilds a kind's whole index, so a store keeps the centre it indexed with
// until the catalog's mean has drifted from it by more than DRIFT of the vectors' spread; as the
// catalog grows the mean settles and re-centring grows rare.

/** Largest tolerated distance of the catalog's mean from the centre in use, as a fraction of the vectors' RMS distance from their mean. */
const DRIFT = 0.1;

/** Running sums of a kind's vectors: enough to know their mean and spread. */
export interface Moments {
  count: number;
  sum: Float64Array;
  /** Sum of the squared norms. */
  squares: number;
}

export function emptyMoments(dim: number): Moments {
  return { count: 0, sum: new Float64Array(dim), squares: 0 };
}

export function momentsOf(dim: number, vectors: Iterable<Float32Array>): Moments {
  const m = emptyMoments(dim);
  for (const v of vectors) include(m, v, 1);
  return m;
}

/** Adds (sign 1) or takes out (sign -1) one vector. */
export function include(m: Moments, v: Float32Array, sign: 1 | -1): void {
  let sq = 0;
  for (let i = 0; i < v.length; i++) {
    m.sum[i]! += sign * v[i]!;
    sq += v[i]! * v[i]!;
  }
  m.count += sign;
  m.squares += sign * sq;
}

/**
 * The centre to index with: `current` while the mean is within DRIFT of it, else the mean. Fewer
 * than two vectors have no direction about their mean, so they are compared from the origin
 * (plain cosine) until a second one arrives.
 */
export function centreFor(m: Moments, current: Float32Array | undefined): Float32Array {
  const dim = m.sum.length;
  if (m.count < 2) return current?.every((x) => x === 0) ? current : new Float32Array(dim);
  const mean = Float32Array.from(m.sum, (s) => s / m.count);
  if (!current) return mean;
  let meanSq = 0;
  let drift = 0;
  for (let i = 0; i < dim; i++) {
    meanSq += mean[i]! * mean[i]!;
    drift += (mean[i]! - current[i]!) ** 2;
  }
  const spread = Math.max(0, m.squares / m.count - meanSq);
  return drift <= DRIFT * DRIFT * spread ? current : mean;
}

/** `v - centre`, unit length (zero stays zero). */
export function centredUnit(v: Float32Array, centre: Float32Array): Float32Array {
  const out = Float32Array.from(v, (x, i) => x - centre[i]!);
  return unit(out);
}

export function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const s = n > 0 ? 1 / Math.sqrt(n) : 0;
  return v.map((x) => x * s);
}
