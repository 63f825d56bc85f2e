// Mel power spectrogram as librosa and the Hugging Face feature extractors compute it: periodic
// Hann window, frames centred on hop multiples with reflect padding at both ends, power
// spectrum, triangular filters on the Slaney mel scale with Slaney area normalisation.

export interface MelSpec {
  sampleRate: number;
  nFft: number;
  hop: number;
  nMels: number;
  fMin: number;
  fMax: number;
}

/** Slaney's mel scale: linear below 1 kHz, logarithmic above. */
const F_SP = 200 / 3;
const LOG_STEP = Math.log(6.4) / 27;
const MIN_LOG_MEL = 1000 / F_SP;
export const hzToMel = (f: number): number => (f < 1000 ? f / F_SP : MIN_LOG_MEL + Math.log(f / 1000) / LOG_STEP);
export const melToHz = (m: number): number => (m < MIN_LOG_MEL ? m * F_SP : 1000 * Math.exp(LOG_STEP * (m - MIN_LOG_MEL)));

/**
 * nMels x (nFft/2+1) weights, row-major. Each filter rises from its lower edge to its centre and
 * falls to its upper edge (edges are the neighbouring mel points), scaled by 2/(upper-lower) in
 * Hz so every filter has the same area whatever its width.
 */
export function melFilterbank(spec: MelSpec): Float64Array {
  const bins = spec.nFft / 2 + 1;
  const lo = hzToMel(spec.fMin);
  const hi = hzToMel(spec.fMax);
  const points = Array.from({ length: spec.nMels + 2 }, (_, i) => melToHz(lo + ((hi - lo) * i) / (spec.nMels + 1)));
  const w = new Float64Array(spec.nMels * bins);
  for (let m = 0; m < spec.nMels; m++) {
    const [a, b, c] = [points[m]!, points[m + 1]!, points[m + 2]!];
    const norm = 2 / (c - a);
    for (let k = 0; k < bins; k++) {
      const f = (k * spec.sampleRate) / spec.nFft;
      const v = Math.min((f - a) / (b - a), (c - f) / (c - b));
      if (v > 0) w[m * bins + k] = v * norm;
    }
  }
  return w;
}

/** Frames a centred STFT gives a signal of `samples`: one per hop multiple, ends included. */
export const frameCount = (samples: number, hop: number): number => 1 + Math.floor(samples / hop);

export class MelSpectrogram {
  private readonly bins: number;
  private readonly window: Float64Array;
  private readonly filters: Float64Array;
  /** Per filter, the first and one-past-last bin with a non-zero weight. */
  private readonly spans: Int32Array;
  private readonly fft: Fft;
  /** e^(-2 pi i k / nFft) for k <= nFft/2: untangles the real transform from the half-size one. */
  private readonly twCos: Float64Array;
  private readonly twSin: Float64Array;

  constructor(readonly spec: MelSpec) {
    const n = spec.nFft;
    this.bins = n / 2 + 1;
    // Periodic Hann: the window of an n+1-point symmetric one without its last sample.
    this.window = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    this.filters = melFilterbank(spec);
    this.spans = new Int32Array(spec.nMels * 2);
    for (let m = 0; m < spec.nMels; m++) {
      let first = -1;
      let last = -1;
      for (let k = 0; k < this.bins; k++) {
        if (this.filters[m * this.bins + k]! !== 0) {
          if (first < 0) first = k;
          last = k;
        }
      }
      this.spans[2 * m] = Math.max(first, 0);
      this.spans[2 * m + 1] = last + 1;
    }
    // A real frame of n samples goes through an n/2-point complex FFT (even samples as the real
    // part, odd ones as the imaginary part), half the work of an n-point one.
    this.fft = new Fft(n / 2);
    this.twCos = Float64Array.from({ length: n / 2 + 1 }, (_, k) => Math.cos((2 * Math.PI * k) / n));
    this.twSin = Float64Array.from({ length: n / 2 + 1 }, (_, k) => -Math.sin((2 * Math.PI * k) / n));
  }

  /** frames x nMels mel powers, row-major (frame after frame). */
  compute(pcm: Float32Array): Float64Array {
    const { nFft: n, hop, nMels } = this.spec;
    const half = n / 2;
    if (pcm.length <= half) throw new Error(`reflect padding needs more than ${half} samples, got ${pcm.length}`);
    const frames = frameCount(pcm.length, hop);
    const out = new Float64Array(frames * nMels);
    const re = new Float64Array(half);
    const im = new Float64Array(half);
    const power = new Float64Array(this.bins);
    const last = pcm.length - 1;
    const w = this.window;
    for (let t = 0; t < frames; t++) {
      const start = t * hop - half;
      for (let i = 0; i < n; i++) {
        let j = start + i;
        // Reflect about the first and last samples (the edge sample itself is not repeated).
        if (j < 0) j = -j;
        else if (j > last) j = 2 * last - j;
        if ((i & 1) === 0) re[i >> 1] = pcm[j]! * w[i]!;
        else im[i >> 1] = pcm[j]! * w[i]!;
      }
      this.fft.transform(re, im);
      for (let k = 0; k <= half; k++) {
        const a = re[k % half]!;
        const b = im[k % half]!;
        const c = re[(half - k) % half]!;
        const d = im[(half - k) % half]!;
        // Spectra of the even and odd samples, then X[k] = E + e^(-2 pi i k/n) O.
        const er = (a + c) / 2;
        const ei = (b - d) / 2;
        const or = (b + d) / 2;
        const oi = (c - a) / 2;
        const wr = this.twCos[k]!;
        const wi = this.twSin[k]!;
        const xr = er + wr * or - wi * oi;
        const xi = ei + wr * oi + wi * or;
        power[k] = xr * xr + xi * xi;
      }
      for (let m = 0; m < nMels; m++) {
        let s = 0;
        const row = m * this.bins;
        for (let k = this.spans[2 * m]!; k < this.spans[2 * m + 1]!; k++) s += this.filters[row + k]! * power[k]!;
        out[t * nMels + m] = s;
      }
    }
    return out;
  }
}

/** In-place iterative radix-2 complex FFT of a fixed power-of-two size. */
class Fft {
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly rev: Uint32Array;

  constructor(private readonly n: number) {
    if (n < 2 || (n & (n - 1)) !== 0) throw new Error(`FFT size must be a power of two, got ${n}`);
    this.cos = Float64Array.from({ length: n / 2 }, (_, i) => Math.cos((2 * Math.PI * i) / n));
    this.sin = Float64Array.from({ length: n / 2 }, (_, i) => -Math.sin((2 * Math.PI * i) / n));
    const bits = Math.log2(n);
    this.rev = Uint32Array.from({ length: n }, (_, i) => {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      return r;
    });
  }

  transform(re: Float64Array, im: Float64Array): void {
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const j = this.rev[i]!;
      if (j > i) {
        [re[i], re[j]] = [re[j]!, re[i]!];
        [im[i], im[j]] = [im[j]!, im[i]!];
      }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const halfSize = size >> 1;
      const step = n / size;
      for (let s = 0; s < n; s += size) {
        for (let k = 0; k < halfSize; k++) {
          const wr = this.cos[k * step]!;
          const wi = this.sin[k * step]!;
          const a = s + k;
          const b = a + halfSize;
          const tr = re[b]! * wr - im[b]! * wi;
          const ti = re[b]! * wi + im[b]! * wr;
          re[b] = re[a]! - tr;
          im[b] = im[a]! - ti;
          re[a]! += tr;
          im[a]! += ti;
        }
      }
    }
  }
}

/** Rounds to the nearest IEEE half-precision value (ties to even), as a float16 cast does. */
export function toFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  // Spacing of half-precision values near a: 2^-24 among subnormals, else 2^(exponent-10).
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp -= 1;
  const quantum = 2 ** (Math.max(exp, -14) - 10);
  const q = a / quantum;
  const f = Math.floor(q);
  const r = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.sign(x) * r * quantum;
}
