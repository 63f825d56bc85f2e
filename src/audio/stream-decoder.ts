// Per-session decoding of streamed audio to 16 kHz mono float PCM, all in process: Opus in WebM
// or Ogg through our demultiplexers and a WebAssembly libopus (audio/opus/opus-decode.ts, the
// same code that decodes uploaded clips), pcm-f32le converted directly. A session holds no
// process, pipe or descriptor: its cost is its CPU time and a few megabytes.
import { AppError, toAppError } from '../base/errors.js';
import { SAMPLE_RATE } from './decode.js';
import { OpusPcmStream, type OpusContainer } from './opus/opus-decode.js';
import { Resampler } from './resample.js';

/** The live formats a stream decoder takes: Opus in WebM or Ogg, or raw float samples. */
export const STREAM_FORMATS = ['webm-opus', 'ogg-opus', 'pcm-f32le'] as const;
export type StreamFormat = (typeof STREAM_FORMATS)[number];

export interface StreamDecoder {
  /** Feeds a chunk of the stream. */
  write(chunk: Buffer): void;
  /** No more input: resolves once every decoded sample has been delivered. */
  end(): Promise<void>;
  /** Stops at once, delivering nothing more, and lets go of what it holds. */
  kill(): void;
}

export interface DecoderEvents {
  pcm(samples: Float32Array): void;
  /** The decoder failed on its own (bad data). */
  error(e: AppError): void;
}

export function createDecoder(format: StreamFormat, sampleRate: number | undefined, on: DecoderEvents): StreamDecoder {
  return format === 'pcm-f32le' ? new PcmDecoder(sampleRate ?? SAMPLE_RATE, on) : new OpusStreamDecoder(format === 'webm-opus' ? 'webm' : 'ogg', on);
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

  constructor(
    rate: number,
    private readonly on: DecoderEvents,
  ) {
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

/**
 * webm-opus and ogg-opus, demultiplexed and decoded in process: no child process per session.
 * Chunks that arrive while the WebAssembly decoder is being created wait in order.
 */
class OpusStreamDecoder implements StreamDecoder {
  private stream: OpusPcmStream | undefined;
  private waiting: Buffer[] = [];
  private dead = false;
  private readonly opened: Promise<void>;

  constructor(
    container: OpusContainer,
    private readonly on: DecoderEvents,
  ) {
    this.opened = OpusPcmStream.open(container).then(
      (s) => {
        if (this.dead) return s.free();
        this.stream = s;
        const waiting = this.waiting;
        this.waiting = [];
        for (const c of waiting) this.write(c);
      },
      (e: unknown) => this.failed(toAppError(e)),
    );
  }

  write(chunk: Buffer): void {
    if (this.dead) return;
    if (!this.stream) {
      this.waiting.push(chunk);
      return;
    }
    let pcm: Float32Array;
    try {
      pcm = this.stream.push(chunk);
    } catch (e) {
      this.failed(toAppError(e));
      return;
    }
    if (pcm.length) this.on.pcm(pcm);
  }

  async end(): Promise<void> {
    await this.opened;
    if (this.dead || !this.stream) return;
    try {
      // A live stream may stop anywhere: an unfinished last block is dropped, not an error.
      this.stream.end(false);
    } catch (e) {
      this.failed(toAppError(e));
      return;
    }
    this.kill();
  }

  kill(): void {
    this.dead = true;
    this.waiting = [];
    this.stream?.free();
    this.stream = undefined;
  }

  private failed(e: AppError): void {
    if (this.dead) return;
    this.kill();
    this.on.error(e.code === 'DECODE_FAILED' ? new AppError(e.code, `the audio stream could not be decoded: ${e.message}`, { cause: e }) : e);
  }
}
