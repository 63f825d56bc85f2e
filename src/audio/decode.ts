// Decoding: ffmpeg spawned directly, any accepted container in, 16 kHz mono float32 PCM out
// through pipes. PCM never touches the disk. Uploads of Opus in WebM or Ogg (what browsers send)
// are decoded in process instead, sparing a process start per clip.
import { spawn } from 'node:child_process';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../base/errors.js';
import { log } from '../base/log.js';
import { decodeOpusFile } from './opus/opus-decode.js';
import { SNIFF_BYTES, sniffFormat, type AudioFormat } from './sniff.js';

export const SAMPLE_RATE = 16000;

export interface DecodeOptions {
  ffmpegPath?: string;
  /** Stop after this many seconds of output (ffmpeg's -t). */
  maxSeconds?: number;
  /** The name errors give the input (an upload's own name rather than its temporary file). */
  label?: string;
  /** Kill ffmpeg and fail with TIMEOUT after this long. */
  timeoutMs?: number;
}

/** Reads the first bytes of a file and returns its audio format, or throws a typed error. */
export async function detectFileFormat(file: string, label = path.basename(file)): Promise<AudioFormat> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new AppError('FILE_NOT_FOUND', `no such file: ${file}`);
    throw new AppError('DECODE_FAILED', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
    const format = sniffFormat(head.subarray(0, bytesRead));
    if (!format) throw new AppError('UNSUPPORTED_FORMAT', `${label}: not an accepted audio format (MP3, Ogg, Opus/WebM, MP4/AAC, WAV, FLAC)`);
    return format;
  } finally {
    await fh.close();
  }
}

/** Decodes a whole file to 16 kHz mono PCM. */
export async function decodeFile(file: string, opts: DecodeOptions = {}): Promise<Float32Array> {
  const label = opts.label ?? path.basename(file);
  await detectFileFormat(file, label);
  return runFfmpeg(['-i', file], label, null, opts);
}

/**
 * Decodes an upload saved to a file: Opus in WebM or Ogg in process, anything else by ffmpeg
 * reading the file itself, since an MP4 may keep its index after the audio and needs seeking.
 */
export async function decodeUpload(file: string, label: string, opts: DecodeOptions = {}): Promise<Float32Array> {
  const format = await detectFileFormat(file, label);
  if (format === 'webm' || format === 'ogg') return decodeBuffer(await readFile(file), label, opts);
  return runFfmpeg(['-i', file], label, null, opts);
}

/** Decodes an in-memory file to 16 kHz mono PCM; ffmpeg reads it from a pipe, so not an MP4 with its index at the end. */
export async function decodeBuffer(data: Uint8Array, label: string, opts: DecodeOptions = {}): Promise<Float32Array> {
  const format = sniffFormat(data.subarray(0, SNIFF_BYTES));
  if (!format) {
    throw new AppError('UNSUPPORTED_FORMAT', `${label}: not an accepted audio format (MP3, Ogg, Opus/WebM, MP4/AAC, WAV, FLAC)`);
  }
  if (format === 'webm' || format === 'ogg') {
    try {
      const pcm = await decodeOpusFile(data, format, opts.maxSeconds);
      if (pcm) return pcm;
    } catch (e) {
      if (e instanceof AppError) throw new AppError(e.code, `${label}: ${e.message}`, { cause: e });
      throw e;
    }
  }
  return runFfmpeg(['-i', 'pipe:0'], label, data, opts);
}

function runFfmpeg(input: string[], label: string, stdin: Uint8Array | null, opts: DecodeOptions): Promise<Float32Array> {
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...input, '-map', '0:a:0', '-vn', '-ac', '1', '-ar', String(SAMPLE_RATE)];
  if (opts.maxSeconds !== undefined) args.push('-t', String(opts.maxSeconds));
  args.push('-f', 'f32le', '-acodec', 'pcm_f32le', 'pipe:1');
  if (stdin) args.splice(args.indexOf('-nostdin'), 1);
  return new Promise((resolve, reject) => {
    const child = spawn(opts.ffmpegPath ?? 'ffmpeg', args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < 4000) stderr += c.toString();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      log.warn('cannot run ffmpeg', { ffmpeg: opts.ffmpegPath ?? 'ffmpeg', error: e.message });
      reject(new AppError('DECODE_FAILED', `${label}: cannot run ffmpeg`, { cause: e }));
    });
    // On exit, not close: the answer must not wait for whatever else holds ffmpeg's pipes.
    child.on('exit', () => {
      clearTimeout(timer);
      if (timedOut) reject(new AppError('TIMEOUT', `${label}: decoding took longer than ${opts.timeoutMs! / 1000} s`));
    });
    child.on('close', (code) => {
      if (timedOut) return;
      if (code !== 0) {
        // ffmpeg's own words go to the log only, with the label for its path.
        const why = (stderr.trim().split('\n').pop() ?? '').replaceAll(input[1]!, label);
        log.info('ffmpeg could not decode an input', { label, code, ffmpeg: why });
        reject(new AppError('DECODE_FAILED', `${label}: ffmpeg could not decode it`));
        return;
      }
      // Copy into an aligned Float32Array; whole samples only.
      const all = Buffer.concat(chunks, bytes);
      const out = new Float32Array(Math.floor(all.length / 4));
      new Uint8Array(out.buffer).set(all.subarray(0, out.length * 4));
      resolve(out);
    });
    if (stdin && child.stdin) {
      child.stdin.on('error', () => {}); // ffmpeg may stop reading early; its exit code tells the story
      child.stdin.end(stdin);
    }
  });
}
