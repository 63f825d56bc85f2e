// Playback speed change by linear interpolation (tempo and pitch together, as a turntable or a
// tape does). Enough for fingerprints, which look at spectral peaks, at a fraction of the cost
// of a windowed-sinc resampler.

/** How many samples `changeSpeed` gives for `n` input samples. */
export const speedLength = (n: number, speed: number) => Math.floor(n / speed);

/**
 * The signal played `speed` times as fast (speed 2: half as many samples, an octave up), or the
 * output samples [from, to) of it: each depends only on its own position, so pieces computed
 * apart are the same as the whole.
 */
export function changeSpeed(x: Float32Array, speed: number, from = 0, to = speedLength(x.length, speed)): Float32Array {
  const end = Math.min(to, speedLength(x.length, speed));
  const y = new Float32Array(Math.max(0, end - from));
  for (let i = from; i < end; i++) {
    const p = i * speed;
    const j = Math.floor(p);
    const f = p - j;
    y[i - from] = (x[j] ?? 0) * (1 - f) + (x[j + 1] ?? 0) * f;
  }
  return y;
}
