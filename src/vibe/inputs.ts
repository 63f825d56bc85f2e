// The models' input tensors from PCM: MusiCNN's log-compressed mel patches and CLAP's
// 10 s log-mel windows, each as its reference extractor computes them.
import { frameCount, MelSpectrogram, toFloat16 } from './mel.js';

export const MUSICNN_INPUT = {
  sampleRate: 16000,
  nFft: 512,
  hop: 256,
  nMels: 96,
  fMin: 0,
  fMax: 8000,
  patchFrames: 187,
  patchHopFrames: 93,
  /** 187 frames of 16 ms: the span of one patch. */
  patchSeconds: (187 * 256) / 16000,
} as const;

export const CLAP_INPUT = {
  sampleRate: 48000,
  nFft: 1024,
  hop: 480,
  nMels: 64,
  fMin: 50,
  fMax: 14000,
  windowSeconds: 10,
  windowHopSeconds: 5,
  /** Power floor before the decibel conversion. */
  floor: 1e-10,
} as const;

/** Model input units (patches or windows) of one signal: the tensor rows and their start times. */
export interface Units {
  data: Float32Array;
  /** Dimensions of the whole input tensor, units first. */
  shape: number[];
  starts: number[];
}

/**
 * Starts of windows of `window` s every `hop` s over `seconds`: while a whole window fits, then
 * one last window ending with the signal when more than half a second would be left out.
 */
export function windowStarts(seconds: number, window: number, hop: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + window <= seconds + 1e-9; s += hop) starts.push(s);
  if (starts.length === 0) return [0];
  if (seconds - (starts.at(-1)! + window) > 0.5) starts.push(seconds - window);
  return starts;
}

let musicnnMel: MelSpectrogram | undefined;

/** MusiCNN's log mel spectrogram, frames x 96: log10(1 + 10000 x) of float16-rounded mel power. */
export function musicnnLogMel(pcm: Float32Array): { data: Float32Array; frames: number } {
  musicnnMel ??= new MelSpectrogram(MUSICNN_INPUT);
  const mel = musicnnMel.compute(pcm);
  const data = new Float32Array(mel.length);
  for (let i = 0; i < mel.length; i++) data[i] = Math.log10(1 + 10000 * toFloat16(mel[i]!));
  return { data, frames: mel.length / MUSICNN_INPUT.nMels };
}

/** Patches of 187 frames every 93 frames; a clip shorter than one patch is padded with silence. */
export function musicnnPatches(pcm: Float32Array): Units {
  const { hop, nMels, patchFrames, patchHopFrames, sampleRate } = MUSICNN_INPUT;
  const minSamples = (patchFrames - 1) * hop;
  let signal = pcm;
  if (pcm.length < minSamples) {
    signal = new Float32Array(minSamples);
    signal.set(pcm);
  }
  const { data: mel, frames } = musicnnLogMel(signal);
  const count = Math.floor((frames - patchFrames) / patchHopFrames) + 1;
  const size = patchFrames * nMels;
  const data = new Float32Array(count * size);
  const starts: number[] = [];
  for (let p = 0; p < count; p++) {
    const first = p * patchHopFrames;
    data.set(mel.subarray(first * nMels, first * nMels + size), p * size);
    starts.push((first * hop) / sampleRate);
  }
  return { data, shape: [count, patchFrames, nMels, 1], starts };
}

let clapMel: MelSpectrogram | undefined;
const CLAP_SAMPLES = CLAP_INPUT.windowSeconds * CLAP_INPUT.sampleRate;
export const CLAP_FRAMES = frameCount(CLAP_SAMPLES, CLAP_INPUT.hop);

/**
 * CLAP's input for one window of at most 10 s, frames x 64 in dB: a shorter clip is repeated
 * whole as many times as fits and the rest zero-padded (the reference's 'repeatpad').
 */
export function clapWindow(pcm: Float32Array): Float32Array {
  if (pcm.length > CLAP_SAMPLES) throw new Error(`a CLAP window holds at most ${CLAP_SAMPLES} samples, got ${pcm.length}`);
  clapMel ??= new MelSpectrogram(CLAP_INPUT);
  let signal = pcm;
  if (pcm.length < CLAP_SAMPLES) {
    signal = new Float32Array(CLAP_SAMPLES);
    const copies = Math.max(1, Math.floor(CLAP_SAMPLES / pcm.length));
    for (let c = 0; c < copies; c++) signal.set(pcm, c * pcm.length);
  }
  const mel = clapMel.compute(signal);
  const out = new Float32Array(mel.length);
  for (let i = 0; i < mel.length; i++) out[i] = 10 * Math.log10(Math.max(CLAP_INPUT.floor, mel[i]!));
  return out;
}

/** CLAP windows of a signal: 10 s every 5 s, as [windows, 1, 1001, 64]. */
export function clapWindows(pcm: Float32Array): Units {
  const { sampleRate, windowSeconds, windowHopSeconds, nMels } = CLAP_INPUT;
  const starts = windowStarts(pcm.length / sampleRate, windowSeconds, windowHopSeconds);
  const size = CLAP_FRAMES * nMels;
  const data = new Float32Array(starts.length * size);
  starts.forEach((s, i) => {
    const a = Math.round(s * sampleRate);
    data.set(clapWindow(pcm.subarray(a, Math.min(pcm.length, a + CLAP_SAMPLES))), i * size);
  });
  return { data, shape: [starts.length, 1, CLAP_FRAMES, nMels], starts };
}
