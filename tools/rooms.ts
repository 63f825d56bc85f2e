// Room impulse responses for the accuracy bench's reverberation conditions (degrade.sh ir:FILE),
// generated rather than recorded so that the RT60 is a parameter, every run gets the same rooms,
// and nothing needs fetching or a licence.
//
// The model, and why each part is there:
// - A direct impulse at 0 s: the clip starts where the excerpt does, so the bench's offsets stay
//   right, and it carries the direct-to-reverberant ratio (DRR).
// - Early reflections: a dozen sparse impulses of random sign in the first few to 70 ms, denser
//   later (as the image sources of a room are), each weighted by 1/distance and by the room's
//   decay. They are what colours the spectrum (comb filtering) and smears onsets, which a
//   landmark fingerprint's peaks are sensitive to, and a noise tail alone would not do it.
// - A late tail of Gaussian noise decaying exponentially, faded in over the early window as the
//   echo density builds up. It is split into four complementary bands whose RT60s are the
//   nominal one times 1.2, 1.0, 0.75 and 0.5 (below 300 Hz, 300-1200 Hz, 1200-4000 Hz, above):
//   air and furnishings absorb high frequencies faster, so a long room blurs the highs less than
//   the lows, and a flat decay would overstate what reverb does to them. The nominal RT60 is the
//   mid band's (as RT60 is usually quoted, around 500 Hz-1 kHz); each band reaches -60 dB at its
//   own RT60, and the file ends when the slowest has.
// - The reflections keep their 1/distance level against the direct sound, so that none is louder
//   than it, and the tail takes the rest of the reverberant energy the DRR asks for: the longer
//   the room, the more the diffuse tail dominates the early sound, as in a real room, without a
//   second parameter.
// - The DRR defaults to what a listener 2 m from the source in a 300 m³ room would get (from the
//   critical distance 0.057·sqrt(V/RT60) m): about -1 dB at 0.3 s down to -10 dB at 2.5 s, a
//   phone held up across a café or a bar. Longer rooms are thus also relatively wetter, as they
//   are, rather than only longer.
// - The seed draws the reflection times, gains, signs and the tail's noise; the RT60 only changes
//   the decay. So rooms of one seed at several RT60s are one room made more or less absorbent,
//   and their figures compare as a series, while another seed is another room.
// Files are mono 32-bit float WAV at 44.1 kHz (degrade.sh's rate, so ffmpeg need not resample),
// cached under CACHE_DIR/rooms/ with the model's version in the name, so that a change to the
// model never reuses a stale file.
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE_DIR, ROOM_MODEL, rng } from './corpus.js';

export const ROOM_SAMPLE_RATE = 44100;
export const ROOM_DIR = path.join(CACHE_DIR, 'rooms');

/** Upper band edges (Hz) of the tail's bands, and each band's RT60 as a multiple of the nominal one. */
const BAND_EDGES = [300, 1200, 4000];
const BAND_RT60 = [1.2, 1.0, 0.75, 0.5];
const REFLECTIONS = 12;
const EARLY_END_S = 0.07;
/** Room volume (m³) and source distance (m) of the default DRR. */
const ROOM_VOLUME = 300;
const SOURCE_DISTANCE = 2;
const SOUND_SPEED = 343;

export interface RoomOptions {
  /** Direct-to-reverberant energy ratio in dB; defaults to defaultDrr(rt60). */
  drrDb?: number;
}

/** DRR of a listener SOURCE_DISTANCE m from the source in a ROOM_VOLUME m³ room of this RT60. */
export function defaultDrr(rt60: number): number {
  return 20 * Math.log10((0.057 * Math.sqrt(ROOM_VOLUME / rt60)) / SOURCE_DISTANCE);
}

/** The impulse response's samples at ROOM_SAMPLE_RATE, the direct sound at sample 0 with gain 1. */
export function roomImpulse(rt60: number, seed: number, opts: RoomOptions = {}): Float32Array {
  if (!(rt60 > 0.05 && rt60 <= 10)) throw new RangeError(`RT60 ${rt60} s is outside (0.05, 10]`);
  const fs = ROOM_SAMPLE_RATE;
  const r = rng(seed);
  const n = Math.ceil((rt60 * Math.max(...BAND_RT60) + 0.02) * fs);
  // Amplitude envelope of -60 dB at `t60`: energy falls 60 dB, amplitude 1000-fold.
  const decay = (t: number, t60: number) => 10 ** ((-3 * t) / t60);

  const directS = SOURCE_DISTANCE / SOUND_SPEED;
  // The first reflection (the floor, a table) comes 2-8 ms after the direct sound.
  const firstS = 0.002 + 0.006 * r();
  const firstN = Math.round(firstS * fs);
  const earlyN = Math.round(EARLY_END_S * fs);

  // Late tail: white noise split into complementary bands, each with its own decay.
  const noise = new Float64Array(n);
  for (let i = 0; i < n; i++) noise[i] = gaussian(r);
  const bands = splitBands(noise, BAND_EDGES, fs);
  const tail = new Float64Array(n);
  for (let b = 0; b < bands.length; b++) {
    const t60 = rt60 * BAND_RT60[b]!;
    const x = bands[b]!;
    for (let i = firstN; i < n; i++) tail[i] += x[i]! * decay(i / fs, t60);
  }
  // Echo density grows through the early window: the tail fades in, linearly in amplitude.
  for (let i = firstN; i < earlyN; i++) tail[i] *= (i - firstN) / (earlyN - firstN);
  // The slowest band is 60 dB down 20 ms before the end; a short fade keeps the cut from clicking.
  const fadeN = Math.round(0.01 * fs);
  for (let i = n - fadeN; i < n; i++) tail[i] *= (n - i) / fadeN;

  // Early reflections: times drawn with a density growing with t (sqrt of a uniform), gains of
  // spherical spreading against the direct path, the room's decay, a random absorption and sign.
  const early = new Float64Array(n);
  const times = Array.from({ length: REFLECTIONS }, (_, k) => (k === 0 ? firstS : firstS + (EARLY_END_S - firstS) * Math.sqrt(r()))).sort((a, b) => a - b);
  for (const t of times) early[Math.round(t * fs)] += (r() < 0.5 ? -1 : 1) * (0.4 + 0.6 * r()) * (directS / (directS + t)) * decay(t, rt60);

  const energy = (x: Float64Array) => x.reduce((e, v) => e + v * v, 0);
  const reverb = 10 ** (-(opts.drrDb ?? defaultDrr(rt60)) / 10);
  // Only a DRR far above a real room's would leave the tail less than a tenth: the reflections give way then.
  const kEarly = Math.min(1, Math.sqrt((0.9 * reverb) / energy(early)));
  const kTail = Math.sqrt((reverb - kEarly ** 2 * energy(early)) / energy(tail));
  const out = new Float32Array(n);
  out[0] = 1;
  for (let i = 1; i < n; i++) out[i] = kEarly * early[i]! + kTail * tail[i]!;
  return out;
}

/** The room's impulse response as a WAV file under ROOM_DIR, written once; returns its path. */
export function roomIr(rt60: number, seed: number, opts: RoomOptions = {}): Promise<string> {
  const drr = opts.drrDb === undefined ? '' : `-drr${opts.drrDb.toFixed(1)}`;
  const file = path.join(ROOM_DIR, `room-m${ROOM_MODEL}-rt${rt60.toFixed(2)}-seed${seed}${drr}.wav`);
  let p = written.get(file);
  if (!p) {
    p = (async () => {
      if (existsSync(file)) return file;
      await mkdir(ROOM_DIR, { recursive: true });
      // Written aside, then renamed: a reader (another bench run) never sees half a file.
      const tmp = `${file}.part.${process.pid}`;
      await writeFile(tmp, wavFloat32(roomImpulse(rt60, seed, opts), ROOM_SAMPLE_RATE));
      await rename(tmp, file);
      return file;
    })();
    written.set(file, p);
  }
  return p;
}
/** One write per file per process: the bench's clip workers ask for the same room at once. */
const written = new Map<string, Promise<string>>();

/** Mono IEEE-float WAV: fmt with cbSize (18 bytes) and a fact chunk, as the format asks of non-PCM data. */
export function wavFloat32(samples: Float32Array, rate: number): Buffer {
  const data = samples.length * 4;
  const b = Buffer.alloc(12 + 26 + 12 + 8 + data);
  let o = 0;
  const str = (s: string) => {
    b.write(s, o, 'ascii');
    o += 4;
  };
  const u32 = (v: number) => {
    b.writeUInt32LE(v, o);
    o += 4;
  };
  const u16 = (v: number) => {
    b.writeUInt16LE(v, o);
    o += 2;
  };
  str('RIFF');
  u32(b.length - 8);
  str('WAVE');
  str('fmt ');
  u32(18);
  u16(3); // WAVE_FORMAT_IEEE_FLOAT
  u16(1);
  u32(rate);
  u32(rate * 4);
  u16(4);
  u16(32);
  u16(0);
  str('fact');
  u32(4);
  u32(samples.length);
  str('data');
  u32(data);
  for (let i = 0; i < samples.length; i++, o += 4) b.writeFloatLE(samples[i]!, o);
  return b;
}

/**
 * Splits x into bands that sum back to x exactly: each band is the zero-phase low-pass of what
 * the bands below left, so the crossovers neither lose nor add energy and shift no phase.
 */
function splitBands(x: Float64Array, edges: number[], fs: number): Float64Array[] {
  const out: Float64Array[] = [];
  let rest = x;
  for (const f of edges) {
    const low = zeroPhaseLowPass(rest, f, fs);
    const next = new Float64Array(rest.length);
    for (let i = 0; i < rest.length; i++) next[i] = rest[i]! - low[i]!;
    out.push(low);
    rest = next;
  }
  out.push(rest);
  return out;
}

/** A Butterworth biquad low-pass run forwards then backwards (4th-order magnitude, no phase). */
function zeroPhaseLowPass(x: Float64Array, f: number, fs: number): Float64Array {
  const w = (2 * Math.PI * f) / fs;
  const alpha = Math.sin(w) / Math.SQRT2; // Q = 1/sqrt(2)
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  const b0 = (1 - cos) / 2 / a0;
  const b1 = (1 - cos) / a0;
  const a1 = (-2 * cos) / a0;
  const a2 = (1 - alpha) / a0;
  const pass = (src: Float64Array, dst: Float64Array, forward: boolean) => {
    let x1 = 0;
    let x2 = 0;
    let y1 = 0;
    let y2 = 0;
    for (let k = 0; k < src.length; k++) {
      const i = forward ? k : src.length - 1 - k;
      const xi = src[i]!;
      const y = b0 * xi + b1 * x1 + b0 * x2 - a1 * y1 - a2 * y2;
      x2 = x1;
      x1 = xi;
      y2 = y1;
      y1 = y;
      dst[i] = y;
    }
  };
  const fwd = new Float64Array(x.length);
  pass(x, fwd, true);
  const out = new Float64Array(x.length);
  pass(fwd, out, false);
  return out;
}

/** Standard normal deviate (Box-Muller) from the seeded generator. */
function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

// node dist/tools/rooms.js RT60 SEED [DRR_DB]: writes one room and prints its path, to listen to
// or to inspect.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [rt60, seed, drr] = process.argv.slice(2).map(Number);
  if (!rt60 || seed === undefined || Number.isNaN(seed)) {
    process.stderr.write('usage: node dist/tools/rooms.js RT60_SECONDS SEED [DRR_DB]\n');
    process.exit(2);
  }
  process.stdout.write(`${await roomIr(rt60, seed, drr === undefined ? {} : { drrDb: drr })}\n`);
}
