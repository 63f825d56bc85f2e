// The Opus identification header (RFC 7845, section 5.1) that both containers carry: Ogg as the
// first packet of the stream, WebM as the track's CodecPrivate. And the contract of the demuxers
// that find it.
import { AppError } from '../../base/errors.js';

export interface OpusHead {
  channels: number;
  /** Samples at 48 kHz to drop from the start of the decoded stream. */
  preSkip: number;
  /** 0: mono or stereo in one stream; anything else: a multistream layout. */
  mappingFamily: number;
}

/** A container parser fed bytes split anywhere; it returns the Opus packets each push completes. */
export interface OpusDemuxer {
  push(bytes: Uint8Array): Uint8Array[];
  /**
   * The input is over. strict (a whole file): ending inside a page or element is a DECODE_FAILED
   * (truncated); otherwise (a live stream cut anywhere) the unfinished tail is dropped.
   */
  end(strict: boolean): void;
  /** Known once the headers have been read. */
  head(): OpusHead | undefined;
}

export function parseOpusHead(b: Uint8Array): OpusHead {
  const magic = new TextDecoder().decode(b.subarray(0, 8));
  if (b.length < 19 || magic !== 'OpusHead') throw new AppError('DECODE_FAILED', 'the Opus header (OpusHead) is missing or too short');
  if (b[8]! >> 4 !== 0) throw new AppError('DECODE_FAILED', `unsupported OpusHead version ${b[8]}`);
  const channels = b[9]!;
  if (channels === 0) throw new AppError('DECODE_FAILED', 'OpusHead declares 0 channels');
  return { channels, preSkip: b[10]! | (b[11]! << 8), mappingFamily: b[18]! };
}
