// The vibe lane's front ends: the mel spectrogram's Slaney filters, centring and padding, the
// float16 rounding, and CLAP's input against the Hugging Face ClapFeatureExtractor as an oracle.
import { ClapFeatureExtractor } from '@huggingface/transformers';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CLAP_FRAMES, CLAP_INPUT, clapWindow, MUSICNN_INPUT, musicnnPatches } from '../src/vibe/inputs.js';
import { frameCount, hzToMel, melFilterbank, MelSpectrogram, melToHz, toFloat16 } from '../src/vibe/mel.js';
import { fetchCorpus } from '../tools/corpus.js';

const run = promisify(execFile);

test('the Slaney mel scale: linear to 1 kHz (15 mels), logarithmic above', () => {
  assert.ok(Math.abs(hzToMel(500) - 7.5) < 1e-12);
  assert.ok(Math.abs(hzToMel(1000) - 15) < 1e-12);
  assert.ok(Math.abs(hzToMel(2000) - (15 + (27 * Math.log(2)) / Math.log(6.4))) < 1e-12);
  for (const f of [0, 60, 999, 1000, 4321, 8000, 14000]) assert.ok(Math.abs(melToHz(hzToMel(f)) - f) < 1e-9 * Math.max(1, f));
});

test('Slaney-normalised filters each have unit area and peak at their centre', () => {
  for (const spec of [MUSICNN_INPUT, CLAP_INPUT]) {
    const w = melFilterbank(spec);
    const bins = spec.nFft / 2 + 1;
    const binHz = spec.sampleRate / spec.nFft;
    const lo = hzToMel(spec.fMin);
    const hi = hzToMel(spec.fMax);
    let checked = 0;
    for (let m = 0; m < spec.nMels; m++) {
      const row = w.subarray(m * bins, (m + 1) * bins);
      const lower = melToHz(lo + ((hi - lo) * m) / (spec.nMels + 1));
      const upper = melToHz(lo + ((hi - lo) * (m + 2)) / (spec.nMels + 1));
      const centre = melToHz(lo + ((hi - lo) * (m + 1)) / (spec.nMels + 1));
      // A triangle sampled at the bins sums to its area only when it spans many bins.
      if ((upper - lower) / binHz >= 8) {
        const area = row.reduce((a, b) => a + b, 0) * binHz;
        assert.ok(Math.abs(area - 1) < 0.02, `filter ${m} area ${area}`);
        checked++;
      }
      const peak = row.indexOf(Math.max(...row));
      assert.ok(Math.abs(peak * binHz - centre) <= binHz, `filter ${m} peaks at ${peak * binHz} Hz, centre ${centre}`);
      assert.ok(
        row.every((v, k) => v === 0 || (k * binHz > lower && k * binHz < upper)),
        `filter ${m} stays between its edges`,
      );
    }
    assert.ok(checked >= 10, `${checked} wide filters checked`);
  }
});

test('a pure tone lands in the band centred nearest to it', () => {
  const mel = new MelSpectrogram(MUSICNN_INPUT);
  const { nMels, fMin, fMax, sampleRate } = MUSICNN_INPUT;
  for (const f of [220, 1000, 3150]) {
    const pcm = Float32Array.from({ length: sampleRate }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / sampleRate));
    const out = mel.compute(pcm);
    const centres = Array.from({ length: nMels }, (_, m) => melToHz(hzToMel(fMin) + ((hzToMel(fMax) - hzToMel(fMin)) * (m + 1)) / (nMels + 1)));
    const expected = centres.reduce((best, c, m) => (Math.abs(c - f) < Math.abs(centres[best]! - f) ? m : best), 0);
    const frame = Array.from(out.subarray(30 * nMels, 31 * nMels));
    assert.equal(frame.indexOf(Math.max(...frame)), expected, `${f} Hz`);
  }
});

test('frames are centred on hop multiples, ends reflect-padded', () => {
  const mel = new MelSpectrogram(MUSICNN_INPUT);
  const { hop, nMels } = MUSICNN_INPUT;
  for (const n of [1000, 16000, 16000 + 255, 16000 + 256]) assert.equal(mel.compute(new Float32Array(n).fill(0.1)).length / nMels, frameCount(n, hop));
  assert.equal(frameCount(16000, 256), 63);
  // An impulse at a hop multiple sits at the peak of that frame's window and at a zero of its
  // neighbours' windows.
  const pcm = new Float32Array(16000);
  pcm[50 * hop] = 1;
  const out = mel.compute(pcm);
  const energy = (t: number) => out.subarray(t * nMels, (t + 1) * nMels).reduce((a, b) => a + b, 0);
  assert.ok(energy(50) > 0);
  assert.equal(energy(49), 0);
  assert.equal(energy(51), 0);
  // A constant signal stays constant into the first and last frames only with reflect padding
  // (zero padding would drop a quarter of their energy or more).
  const dc = mel.compute(new Float32Array(16000).fill(0.5));
  const dcEnergy = (frame: number) => dc.subarray(frame * nMels, (frame + 1) * nMels).reduce((a, b) => a + b, 0);
  const last = frameCount(16000, hop) - 1;
  assert.ok(Math.abs(dcEnergy(0) - dcEnergy(30)) / dcEnergy(30) < 1e-9, `first frame ${dcEnergy(0)} vs ${dcEnergy(30)}`);
  assert.ok(Math.abs(dcEnergy(last) - dcEnergy(30)) / dcEnergy(30) < 1e-9, `last frame ${dcEnergy(last)} vs ${dcEnergy(30)}`);
});

test('float16 rounding: nearest representable value, ties to even, subnormals', () => {
  assert.equal(toFloat16(0.1), 0.0999755859375);
  assert.equal(toFloat16(65504), 65504);
  assert.equal(toFloat16(70000), Infinity);
  assert.equal(toFloat16(1 + 2 ** -11), 1);
  assert.equal(toFloat16(1 + 3 * 2 ** -11), 1 + 2 ** -9);
  assert.equal(toFloat16(2 ** -25 * 0.9), 0);
  assert.equal(toFloat16(3e-8), 2 ** -24);
  assert.equal(toFloat16(1000.3), 1000.5);
});

test('MusiCNN patches: 187 frames every 93, a short clip padded to one patch', () => {
  const { sampleRate, patchFrames, nMels } = MUSICNN_INPUT;
  const ten = musicnnPatches(new Float32Array(10 * sampleRate).fill(0.01));
  assert.deepEqual(ten.shape, [5, patchFrames, nMels, 1]);
  assert.deepEqual(
    ten.starts.map((s) => Math.round(s * 1000)),
    [0, 1488, 2976, 4464, 5952],
  );
  const short = musicnnPatches(new Float32Array(sampleRate).fill(0.01));
  assert.deepEqual(short.shape, [1, patchFrames, nMels, 1]);
  // log10(1 + 10000 x) of silence is exactly 0: the padding adds no energy.
  assert.equal(short.data[(patchFrames - 1) * nMels + 10], 0);
});

/** 48 kHz mono PCM of part of a file (the pipeline's decoder is fixed at 16 kHz). */
async function decode48k(file: string, start: number, seconds: number): Promise<Float32Array> {
  const { stdout } = await run(
    'ffmpeg',
    ['-nostdin', '-loglevel', 'error', '-ss', String(start), '-t', String(seconds), '-i', file, '-ac', '1', '-ar', '48000', '-f', 'f32le', 'pipe:1'],
    {
      encoding: 'buffer',
      maxBuffer: 1 << 26,
    },
  );
  return new Float32Array(stdout.buffer, stdout.byteOffset, stdout.byteLength / 4).slice();
}

test('the CLAP front end matches the reference ClapFeatureExtractor on real audio', async () => {
  // The clap-htsat-unfused preprocessor settings, given directly: nothing is downloaded.
  const oracle = new ClapFeatureExtractor({
    feature_extractor_type: 'ClapFeatureExtractor',
    feature_size: 64,
    sampling_rate: 48000,
    hop_length: 480,
    fft_window_size: 1024,
    nb_frequency_bins: 513,
    frequency_min: 50,
    frequency_max: 14000,
    max_length_s: 10,
    nb_max_samples: 480000,
    padding: 'repeatpad',
    truncation: 'rand_trunc',
    padding_value: 0,
    return_attention_mask: false,
  });
  const tracks = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  // A full window, and clips that repeat whole 2 and 4 times before the zero padding.
  for (const [i, seconds] of [
    [0, 10],
    [5, 3.7],
    [11, 2.2],
  ] as const) {
    const pcm = await decode48k(tracks[i]!.file, 20, seconds);
    const ours = clapWindow(pcm);
    const { input_features } = (await oracle._call(pcm)) as { input_features: { dims: number[]; data: Float32Array } };
    assert.deepEqual(input_features.dims, [1, 1, CLAP_FRAMES, CLAP_INPUT.nMels]);
    assert.equal(CLAP_FRAMES, 1001);
    let worst = 0;
    for (let k = 0; k < ours.length; k++) worst = Math.max(worst, Math.abs(ours[k]! - input_features.data[k]!));
    assert.ok(worst < 1e-3, `${tracks[i]!.name} ${seconds} s: largest difference ${worst} dB`);
  }
});
