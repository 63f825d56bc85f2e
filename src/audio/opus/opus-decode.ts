// In-process decoding of Opus in WebM or Ogg to 16 kHz mono float PCM: our own demultiplexer,
// then libopus compiled to WebAssembly (the opus-decoder package). libopus decodes at 16 kHz
// natively (CELT drops the bands above 8 kHz, SILK runs at 16 kHz), so no resampling pass is
// needed. The decoder always outputs stereo (it duplicates a mono stream, so one decoder serves
// both, created before the header arrives); a stereo stream is downmixed as ffmpeg downmixes the
// catalog, (L + R) / sqrt(2), so that query and catalog audio stand at the same level. The same
// class serves live
// sessions (bytes as they arrive) and uploaded clips (the whole buffer); no process is started.
import { OpusDecoder } from 'opus-decoder';
import { AppError } from '../../base/errors.js';
import { SAMPLE_RATE } from '../decode.js';
import { OggDemuxer } from './ogg-demux.js';
import type { OpusDemuxer } from './opus-head.js';
import { WebmDemuxer } from './webm-demux.js';

export type OpusContainer = 'webm' | 'ogg';

/** The decoder's input buffer (opus-decoder allots 3840 bytes per channel; real packets are far smaller). */
const MAX_DECODER_PACKET = 2 * 3840;

export class OpusPcmStream {
  private readonly demux: OpusDemuxer;
  /** Output samples still to drop for the header's pre-skip; set once the header is known. */
  private skip: number | undefined;
  private freed = false;

  private constructor(
    container: OpusContainer,
    private readonly decoder: OpusDecoder<16000>,
  ) {
    this.demux = container === 'webm' ? new WebmDemuxer() : new OggDemuxer();
  }

  /** A stream ready to decode (the WebAssembly instance is created asynchronously). */
  static async open(container: OpusContainer): Promise<OpusPcmStream> {
    const decoder = new OpusDecoder({ sampleRate: SAMPLE_RATE as 16000, channels: 2, streamCount: 1, coupledStreamCount: 1, channelMappingTable: [0, 1] });
    await decoder.ready;
    return new OpusPcmStream(container, decoder);
  }

  /** Bytes in, the PCM they complete out (possibly empty). Throws a typed AppError on bad input. */
  push(bytes: Uint8Array): Float32Array {
    return this.decode(this.demux.push(bytes));
  }

  /** The input is over; see OpusDemuxer.end for strict. */
  end(strict: boolean): void {
    this.demux.end(strict);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.decoder.free();
  }

  private decode(packets: Uint8Array[]): Float32Array {
    if (!packets.length) return new Float32Array(0);
    const head = this.demux.head()!;
    if (this.skip === undefined) {
      // Family 0 is mono or stereo in one stream, all a browser sends; a stereo decoder takes either.
      if (head.mappingFamily !== 0)
        throw new AppError('UNSUPPORTED_FORMAT', `multichannel Opus (mapping family ${head.mappingFamily}) is not decoded in process`);
      this.skip = Math.round((head.preSkip * SAMPLE_RATE) / 48000);
    }
    const parts: Float32Array[] = [];
    let total = 0;
    for (const p of packets) {
      if (p.length === 0) continue; // an empty packet carries no audio (a gap)
      if (p.length > MAX_DECODER_PACKET)
        throw new AppError('DECODE_FAILED', `Opus packet of ${p.length} bytes (at most ${MAX_DECODER_PACKET} decoded in process)`);
      const out = this.decoder.decodeFrame(p);
      if (out.errors.length) throw new AppError('DECODE_FAILED', `corrupt Opus packet: ${out.errors[0]!.message}`);
      const [left, right] = out.channelData as [Float32Array, Float32Array];
      let pcm = left;
      if (head.channels === 2) for (let i = 0; i < pcm.length; i++) pcm[i] = (pcm[i]! + right[i]!) * Math.SQRT1_2;
      if (this.skip > 0) {
        const drop = Math.min(this.skip, pcm.length);
        this.skip -= drop;
        pcm = pcm.subarray(drop);
      }
      if (pcm.length) {
        parts.push(pcm);
        total += pcm.length;
      }
    }
    if (parts.length === 1) return parts[0]!;
    const all = new Float32Array(total);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  }
}

/**
 * Decodes a whole WebM/Opus or Ogg/Opus file to 16 kHz mono PCM, stopping after maxSeconds.
 * Returns null when the container holds another codec (the caller hands it to ffmpeg).
 */
export async function decodeOpusFile(data: Uint8Array, container: OpusContainer, maxSeconds = Infinity): Promise<Float32Array | null> {
  const stream = await OpusPcmStream.open(container);
  const limit = Math.min(Number.MAX_SAFE_INTEGER, Math.ceil(maxSeconds * SAMPLE_RATE));
  const parts: Float32Array[] = [];
  let total = 0;
  try {
    // Slices, so that a clip cut at maxSeconds stops decoding there.
    const SLICE = 64 * 1024;
    for (let at = 0; at < data.length && total < limit; at += SLICE) {
      const pcm = stream.push(data.subarray(at, at + SLICE));
      parts.push(pcm);
      total += pcm.length;
    }
    if (total < limit) stream.end(true);
  } catch (e) {
    if (e instanceof AppError && e.code === 'UNSUPPORTED_FORMAT') return null;
    throw e;
  } finally {
    stream.free();
  }
  const out = new Float32Array(Math.min(total, limit));
  let o = 0;
  for (const p of parts) {
    if (o >= out.length) break;
    out.set(p.subarray(0, out.length - o), o);
    o += p.length;
  }
  return out;
}
