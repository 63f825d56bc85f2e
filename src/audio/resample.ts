// Streaming sample-rate conversion to 16 kHz for pcm-f32le clients that send another rate: a
// windowed-sinc low-pass at the lower Nyquist, evaluated at each output instant. Output depends
// only on the samples, not on how they were split into blocks.
import { SAMPLE_RATE } from './decode.js';

const HALF_TAPS = 16;

export class Resampler {
  private readonly step: number;
  private readonly cutoff: number;
  private buf = new Float32Array(0);
  /** Input index of buf[0]. */
  private bufStart = -HALF_TAPS;
  /** Input position (fractional) of the next output sample. */
  private next = 0;

  constructor(private readonly inRate: number) {
    this.step = inRate / SAMPLE_RATE;
    this.cutoff = Math.min(1, SAMPLE_RATE / inRate) * 0.95;
    this.buf = new Float32Array(HALF_TAPS); // silence before the stream
  }

  push(x: Float32Array): Float32Array {
    if (this.inRate === SAMPLE_RATE) return x;
    const merged = new Float32Array(this.buf.length + x.length);
    merged.set(this.buf);
    merged.set(x, this.buf.length);
    this.buf = merged;
    const end = this.bufStart + this.buf.length; // first input index not yet received
    const out: number[] = [];
    while (Math.floor(this.next) + HALF_TAPS < end) {
      out.push(this.at(this.next));
      this.next += this.step;
    }
    // Keep what later outputs still need.
    const keepFrom = Math.floor(this.next) - HALF_TAPS + 1;
    const drop = Math.max(0, keepFrom - this.bufStart);
    if (drop > 0) {
      this.buf = this.buf.slice(drop);
      this.bufStart += drop;
    }
    return Float32Array.from(out);
  }

  private at(pos: number): number {
    const c = this.cutoff;
    const base = Math.floor(pos);
    let acc = 0;
    for (let k = base - HALF_TAPS + 1; k <= base + HALF_TAPS; k++) {
      const t = pos - k;
      const sinc = t === 0 ? 1 : Math.sin(Math.PI * c * t) / (Math.PI * c * t);
      const w = 0.5 + 0.5 * Math.cos((Math.PI * t) / (HALF_TAPS + 1));
      acc += (this.buf[k - this.bufStart] ?? 0) * c * sinc * w;
    }
    return acc;
  }
}
