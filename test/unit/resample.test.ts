// The streaming resampler on synthetic sines: pitch kept, length scaled, block splits irrelevant.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { concatFloat32 } from '../../src/base/arrays.js';
import { SAMPLE_RATE } from '../../src/audio/decode.js';
import { Resampler } from '../../src/audio/resample.js';

const sine = (hz: number, rate: number, seconds: number, amp = 0.5) =>
  Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate));

/** Frequency from upward zero crossings, past the filter's start-up. */
function frequency(x: Float32Array, rate: number): number {
  const skip = 64;
  let first = -1;
  let last = -1;
  let n = 0;
  for (let i = skip + 1; i < x.length; i++) {
    if (x[i - 1]! < 0 && x[i]! >= 0) {
      if (first < 0) first = i;
      last = i;
      n++;
    }
  }
  return ((n - 1) * rate) / (last - first);
}

function rms(x: Float32Array, skip = 64): number {
  let s = 0;
  for (let i = skip; i < x.length; i++) s += x[i]! ** 2;
  return Math.sqrt(s / (x.length - skip));
}

describe('Resampler', () => {
  it('keeps a 1 kHz tone at 1 kHz and its level, 48 kHz -> 16 kHz', () => {
    const out = new Resampler(48000).push(sine(1000, 48000, 1));
    assert.ok(Math.abs(frequency(out, SAMPLE_RATE) - 1000) < 1, `frequency ${frequency(out, SAMPLE_RATE)}`);
    assert.ok(Math.abs(rms(out) - 0.5 / Math.SQRT2) < 0.01, `rms ${rms(out)}`);
  });

  it('keeps a tone through a non-integer ratio, 44.1 kHz -> 16 kHz', () => {
    const out = new Resampler(44100).push(sine(2500, 44100, 0.5));
    assert.ok(Math.abs(frequency(out, SAMPLE_RATE) - 2500) < 2, `frequency ${frequency(out, SAMPLE_RATE)}`);
  });

  it('scales the length by the rate ratio, less the filter half-width still pending', () => {
    for (const rate of [48000, 44100, 22050, 8000]) {
      const n = rate; // one second
      const got = new Resampler(rate).push(new Float32Array(n)).length;
      const want = (n * SAMPLE_RATE) / rate;
      // At most the 16 input samples the filter waits for are not yet output.
      assert.ok(got <= want + 1 && got >= want - (16 * SAMPLE_RATE) / rate - 1, `${rate}: ${got} vs ${want}`);
    }
  });

  it('removes a tone above the new Nyquist rather than folding it down', () => {
    // 12 kHz would alias to 4 kHz at 16 kHz.
    const out = new Resampler(48000).push(sine(12000, 48000, 0.5));
    assert.ok(rms(out) < 0.01, `rms ${rms(out)}`);
  });

  it('gives the same samples whatever the blocks the input comes in', () => {
    const x = sine(440, 48000, 0.3);
    const whole = new Resampler(48000).push(x);
    const r = new Resampler(48000);
    const parts: Float32Array[] = [];
    const sizes = [1, 2, 3, 5, 17, 480, 1, 4801];
    for (let at = 0, k = 0; at < x.length; k++) {
      const n = sizes[k % sizes.length]!;
      parts.push(r.push(x.subarray(at, at + n)));
      at += n;
    }
    assert.deepEqual(concatFloat32(parts), whole);
  });

  it('passes 16 kHz input through untouched', () => {
    const x = sine(440, SAMPLE_RATE, 0.1);
    assert.equal(new Resampler(SAMPLE_RATE).push(x), x);
  });
});
