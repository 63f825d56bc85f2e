// Real audio for tests and benchmarks: the shared corpus scripts, run once and cached outside
// the checkout (AUDIO_IDENT_CACHE_DIR, default ~/.cache/audio-ident).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
/** ../shared beside the checkout (dist/test -> repo root -> ..). */
export const SHARED_DIR = process.env.AUDIO_IDENT_SHARED_DIR ?? path.resolve(here, '..', '..', '..', 'shared');
export const CACHE_DIR = process.env.AUDIO_IDENT_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'audio-ident');
/** Where tests cut and write their clips; made here, so that a cold cache has it before any write. */
export const CLIP_DIR = path.join(CACHE_DIR, 'test-clips');
mkdirSync(CLIP_DIR, { recursive: true });

export interface CorpusTrack {
  file: string;
  name: string;
  pkg: string;
  duration: number;
}

export async function fetchCorpus(size: 'small' | 'full'): Promise<CorpusTrack[]> {
  const dir = path.join(CACHE_DIR, `corpus-${size}`);
  const manifest = path.join(dir, 'manifest.tsv');
  if (!existsSync(manifest)) {
    await mkdir(dir, { recursive: true });
    process.stderr.write(`fetching the ${size} corpus into ${dir} (once)\n`);
    await run('bash', [path.join(SHARED_DIR, 'corpus', 'fetch-corpus.sh'), dir, size], { maxBuffer: 1 << 26 });
  }
  return readFileSync(manifest, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [name, pkg, dur] = line.split('\t');
      return { file: path.join(dir, 'tracks', name!), name: name!, pkg: pkg!, duration: Number(dur) };
    });
}

/** A degradation chain of degrade.sh, with the output extension it needs. */
export interface Condition {
  name: string;
  steps: string[];
  ext: 'wav' | 'webm';
}

export const noiseFile = (name: string) => path.join(SHARED_DIR, 'noise', name);

export const CONDITIONS: Condition[] = [
  { name: 'clean', steps: [], ext: 'wav' },
  { name: 'white 10 dB', steps: ['white:10'], ext: 'wav' },
  { name: 'white 0 dB', steps: ['white:0'], ext: 'wav' },
  { name: 'babble 5 dB', steps: [`noise:${noiseFile('babble-5-talkers.wav')}:5`], ext: 'wav' },
  { name: 'Opus 32k WebM', steps: [], ext: 'webm' },
  { name: 'reverb+street 5 dB+phone', steps: ['reverb', `noise:${noiseFile('street-city.ogg')}:5`, 'phone'], ext: 'wav' },
  { name: 'speed 1.02', steps: ['speed:1.02'], ext: 'wav' },
];

/** Cuts and degrades one excerpt with ../shared/corpus/degrade.sh, unless it is cached. */
export async function makeClip(src: string, out: string, start: number, seconds: number, c: Condition): Promise<string> {
  if (existsSync(out)) return out;
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.part.${process.pid}.${c.ext}`;
  await run('bash', [path.join(SHARED_DIR, 'corpus', 'degrade.sh'), src, tmp, start.toFixed(3), String(seconds), ...c.steps], {
    env: { ...process.env, BITRATE: '32k' },
  });
  await run('mv', [tmp, out]);
  return out;
}

/** The benchmarks' split: tracks kept out of the catalog as non-catalog material, and its seed. */
export const KEPT_OUT = 30;
export const SPLIT_SEED = 20261121;

/**
 * Shuffles the corpus with `r` and keeps the first `n` tracks out of the catalog, as
 * non-catalog material: the accuracy and live benchmarks share this split.
 */
export function keepOut(tracks: CorpusTrack[], n: number, r: () => number): { catalog: CorpusTrack[]; keptOut: CorpusTrack[] } {
  const shuffled = tracks
    .map((t) => ({ t, k: r() }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.t);
  return { keptOut: shuffled.slice(0, n), catalog: shuffled.slice(n) };
}

/** Deterministic pseudo-random numbers (mulberry32), so every run draws the same excerpts. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export { pool } from '../src/base/pool.js';
