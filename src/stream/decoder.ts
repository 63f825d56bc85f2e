// Per-session decoding of streamed audio to 16 kHz mono float PCM. Compressed formats go through
// an ffmpeg process of the session's own (stdin in, stdout out); pcm-f32le is converted in
// process. Every ffmpeg is counted from spawn to exit, so tests and metrics can see that none
// outlives its session.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { AppError } from '../errors.js';
import { SAMPLE_RATE } from '../pipeline/decode.js';
import { Resampler } from './resample.js';

export interface StreamDecoder {
  /** Feeds a chunk of the stream. */
  write(chunk: Buffer): void;
  /** No more input: resolves once every decoded sample has been delivered. */
  end(): Promise<void>;
  /** Stops at once, delivering nothing more. */
  kill(): void;
  /** Settles when the decoder holds no process any more. */
  readonly released: Promise<void>;
}

export interface DecoderEvents {
  pcm(samples: Float32Array): void;
  /** The decoder failed on its own (bad data, ffmpeg killed from outside). */
  error(e: AppError): void;
}

let running = 0;
/** ffmpeg processes of live sessions that have not exited yet. */
export const runningFfmpeg = (): number => running;

export function createDecoder(format: 'webm-opus' | 'ogg-opus' | 'pcm-f32le', sampleRate: number | undefined, on: DecoderEvents, ffmpegPath = 'ffmpeg'): StreamDecoder {
  return format === 'pcm-f32le' ? new PcmDecoder(sampleRate ?? SAMPLE_RATE, on) : new FfmpegDecoder(format === 'webm-opus' ? 'webm' : 'ogg', on, ffmpegPath);
}

/** Turns a byte stream into whole float32 samples, carrying a partial sample over. */
class FloatAssembler {
  private carry = Buffer.alloc(0);

  take(chunk: Buffer): Float32Array {
    const all = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = all.length - (all.length % 4);
    this.carry = Buffer.from(all.subarray(whole));
    const out = new Float32Array(whole / 4);
    new Uint8Array(out.buffer).set(all.subarray(0, whole));
    return out;
  }
}

class PcmDecoder implements StreamDecoder {
  private readonly floats = new FloatAssembler();
  private readonly resampler: Resampler;
  private dead = false;
  readonly released = Promise.resolve();

  constructor(rate: number, private readonly on: DecoderEvents) {
    this.resampler = new Resampler(rate);
  }

  write(chunk: Buffer): void {
    if (this.dead) return;
    const x = this.floats.take(chunk);
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]!)) {
        this.dead = true;
        this.on.error(new AppError('DECODE_FAILED', 'pcm-f32le audio holds a sample that is not a finite number'));
        return;
      }
    }
    const y = this.resampler.push(x);
    if (y.length) this.on.pcm(y);
  }

  async end(): Promise<void> {
    this.dead = true;
  }

  kill(): void {
    this.dead = true;
  }
}

class FfmpegDecoder implements StreamDecoder {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly floats = new FloatAssembler();
  readonly released: Promise<void>;
  private killed = false;
  private stderr = '';

  constructor(container: 'webm' | 'ogg', private readonly on: DecoderEvents, ffmpegPath: string) {
    // Small probe: a live stream must start decoding on its first packets, not after seconds.
    const args = ['-nostats', '-hide_banner', '-loglevel', 'error', '-probesize', '32', '-analyzeduration', '0', '-f', container, '-i', 'pipe:0',
      '-map', '0:a:0', '-vn', '-ac', '1', '-ar', String(SAMPLE_RATE), '-f', 'f32le', '-acodec', 'pcm_f32le', '-flush_packets', '1', 'pipe:1'];
    this.child = spawn(ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    running++;
    this.released = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        running--;
        if (!this.killed && code !== 0) {
          const why = this.stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit code ${code}`);
          this.on.error(new AppError('DECODE_FAILED', `the audio stream could not be decoded: ${why}`));
        }
        resolve();
      });
    });
    this.child.once('error', () => {}); // a failed spawn also closes; reported there
    this.child.stdout.on('data', (c: Buffer) => {
      if (this.killed) return;
      const pcm = this.floats.take(c);
      if (pcm.length) this.on.pcm(pcm);
    });
    this.child.stderr.on('data', (c: Buffer) => {
      if (this.stderr.length < 2000) this.stderr += c.toString();
    });
    this.child.stdin.on('error', () => {}); // ffmpeg gone: its close event tells why
  }

  write(chunk: Buffer): void {
    if (!this.killed && this.child.stdin.writable) this.child.stdin.write(chunk);
  }

  async end(): Promise<void> {
    if (!this.killed) this.child.stdin.end();
    await this.released;
  }

  kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.child.kill('SIGKILL');
  }
}
