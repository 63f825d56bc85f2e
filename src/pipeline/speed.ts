// Playback speed change by linear interpolation (tempo and pitch together, as a turntable or a
// tape does). Enough for fingerprints, which look at spectral peaks, at a fraction of the cost
// of a windowed-sinc resampler.

/** The signal played `speed` times as fast (speed 2: half as many samples, an octave up). */
export function changeSpeed(x: Float32Array, speed: number): Float32Array {
  const n = Math.floor(x.length / speed);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * speed;
    const j = Math.floor(p);
    const f = p - j;
    y[i] = (x[j] ?? 0) * (1 - f) + (x[j + 1] ?? 0) * f;
  }
  return y;
}
