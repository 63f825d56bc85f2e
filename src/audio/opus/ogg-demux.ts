// Streaming Ogg demultiplexer for Opus (RFC 3533 pages, RFC 7845 mapping): bytes in, split
// anywhere, whole Opus packets of the first logical stream that begins with OpusHead out. Every
// page's CRC is checked; packets are reassembled across pages; other logical streams are skipped.
// A page is at most 64 KiB and a packet is capped, so memory stays bounded on any input.
import { AppError } from '../../base/errors.js';
import { DemuxInput } from './demux-input.js';
import { parseOpusHead, type OpusDemuxer, type OpusHead } from './opus-head.js';

const HEADER_BYTES = 27;
/** An Opus packet is at most 120 ms of 1275-byte frames; far above any real one. */
const MAX_PACKET_BYTES = 64 * 1024;
const CONTINUED = 0x01;
const BOS = 0x02;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/** Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, initial 0) over a page whose CRC field is zero. */
function pageCrc(page: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < page.length; i++) {
    const b = i >= 22 && i < 26 ? 0 : page[i]!;
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]!) >>> 0;
  }
  return crc;
}

const fail = (msg: string) => new AppError('DECODE_FAILED', `Ogg: ${msg}`);

export class OggDemuxer implements OpusDemuxer {
  private readonly input = new DemuxInput();
  private serial: number | undefined;
  private seq = 0;
  /** Packets of the Opus stream completed so far (0: OpusHead, 1: OpusTags, then audio). */
  private packetIndex = 0;
  private partial: Uint8Array[] = [];
  private partialBytes = 0;
  private inPacket = false;
  private ended = false;
  private opusHead: OpusHead | undefined;

  head(): OpusHead | undefined {
    return this.opusHead;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    const packets: Uint8Array[] = [];
    const input = this.input;
    if (!input.append(bytes)) return packets;
    for (;;) {
      const avail = input.available;
      if (avail < HEADER_BYTES) return this.waitFor(HEADER_BYTES, packets);
      const b = input.unread();
      if (b[0] !== 0x4f || b[1] !== 0x67 || b[2] !== 0x67 || b[3] !== 0x53) throw fail(`no page at byte ${input.offset} (capture pattern "OggS" missing)`);
      if (b[4] !== 0) throw fail(`page at byte ${input.offset} has unknown version ${b[4]}`);
      const segments = b[26]!;
      if (avail < HEADER_BYTES + segments) return this.waitFor(HEADER_BYTES + segments, packets);
      let body = 0;
      for (let i = 0; i < segments; i++) body += b[HEADER_BYTES + i]!;
      const total = HEADER_BYTES + segments + body;
      if (avail < total) return this.waitFor(total, packets);
      const page = b.subarray(0, total);
      const view = new DataView(page.buffer, page.byteOffset, total);
      if (view.getUint32(22, true) !== pageCrc(page)) throw fail(`page at byte ${input.offset} fails its CRC check (corrupt data)`);
      this.page(page, view, packets);
      input.consume(total);
    }
  }

  /** Stops parsing until `bytes` unparsed bytes are at hand; what was parsed so far goes out. */
  private waitFor(bytes: number, packets: Uint8Array[]): Uint8Array[] {
    this.input.wait(bytes);
    return packets;
  }

  end(strict: boolean): void {
    if (strict && this.input.unparsed > 0) throw fail('the input ends inside a page (truncated)');
    if (strict && this.inPacket && !this.ended) throw fail('the input ends inside a packet (truncated)');
    if (this.serial === undefined) throw fail('no Opus stream: the input holds no complete first page');
  }

  private page(page: Uint8Array, view: DataView, packets: Uint8Array[]): void {
    const flags = page[5]!;
    const serial = view.getUint32(14, true);
    const seq = view.getUint32(18, true);
    const segments = page[26]!;
    const lacing = page.subarray(HEADER_BYTES, HEADER_BYTES + segments);
    let at = HEADER_BYTES + segments;
    if (this.serial === undefined) {
      if (!(flags & BOS)) {
        throw new AppError('UNSUPPORTED_FORMAT', 'Ogg: no logical stream begins with OpusHead (not Ogg/Opus)');
      }
      // A stream's first page holds its identification header alone.
      if (new TextDecoder().decode(page.subarray(at, at + 8)) !== 'OpusHead') return; // another codec's stream
      this.serial = serial;
      this.seq = seq - 1;
    }
    if (serial !== this.serial || this.ended) return;
    if (seq !== this.seq + 1) throw fail(`page ${seq} follows page ${this.seq}: pages are missing`);
    this.seq = seq;
    const continued = (flags & CONTINUED) !== 0;
    if (continued !== this.inPacket) {
      throw fail(continued ? `page ${seq} continues a packet that never began` : `page ${seq} starts anew inside an unfinished packet`);
    }
    for (const l of lacing) {
      if (this.packetIndex !== 1 || this.partialBytes < 8) this.partial.push(page.subarray(at, at + l));
      this.partialBytes += l;
      at += l;
      this.inPacket = true;
      if (this.partialBytes > MAX_PACKET_BYTES && this.packetIndex !== 1) throw fail(`packet over ${MAX_PACKET_BYTES} bytes at page ${seq}`);
      if (l < 255) this.packet(packets);
    }
    if (flags & 0x04) this.ended = true;
  }

  private packet(packets: Uint8Array[]): void {
    const data = new Uint8Array(this.partial.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of this.partial) {
      data.set(p, o);
      o += p.length;
    }
    this.partial = [];
    this.partialBytes = 0;
    this.inPacket = false;
    const index = this.packetIndex++;
    if (index === 0) this.opusHead = parseOpusHead(data);
    // OpusTags (comments, perhaps cover art) is skipped: only its first 8 bytes were kept.
    else if (index === 1) {
      if (new TextDecoder().decode(data.subarray(0, 8)) !== 'OpusTags') throw fail('the second packet is not OpusTags');
    } else packets.push(data);
  }
}
