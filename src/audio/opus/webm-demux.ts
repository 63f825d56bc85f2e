// Streaming WebM/Matroska demultiplexer for Opus: bytes in, split anywhere, whole Opus packets of
// the first A_OPUS track out. Written for what browsers stream (Chromium's MediaRecorder: a live
// Segment and Clusters of unknown size, SimpleBlocks) and what muxers write to files (known sizes,
// BlockGroups, laced blocks). Only elements on the way to the audio are read; everything else is
// skipped by its size without being buffered, so memory stays bounded on any input.
import { AppError } from '../../base/errors.js';
import { DemuxInput } from './demux-input.js';
import { parseOpusHead, type OpusDemuxer, type OpusHead } from './opus-head.js';

const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const CLUSTER = 0x1f43b675;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const TRACK_NUMBER = 0xd7;
const CODEC_ID = 0x86;
const CODEC_PRIVATE = 0x63a2;
const CODEC_DELAY = 0x56aa;
const AUDIO = 0xe1;
const CHANNELS = 0x9f;
const SIMPLE_BLOCK = 0xa3;
const BLOCK_GROUP = 0xa0;
const BLOCK = 0xa1;
const VOID = 0xec;

/** Masters whose children matter; every other element is skipped whole. */
const MASTERS = new Set([SEGMENT, CLUSTER, TRACKS, TRACK_ENTRY, AUDIO, BLOCK_GROUP]);
/** Elements of the Segment level: one of them ends a Cluster whose size is unknown. */
const SEGMENT_CHILDREN = new Set([0x114d9b74, 0x1549a966, TRACKS, CLUSTER, 0x1c53bb6b, 0x1941a469, 0x1043a770, 0x1254c367]);
/** Leaves that are read; the largest a block may be (Opus packets are at most a few KiB). */
const LEAVES = new Set([TRACK_NUMBER, CODEC_ID, CODEC_PRIVATE, CODEC_DELAY, CHANNELS, SIMPLE_BLOCK, BLOCK]);
const MAX_LEAF_BYTES = 1 << 20;
const UNKNOWN = -1;

interface Open {
  id: number;
  /** Absolute offset where the element ends; Infinity when its size is unknown. */
  end: number;
}

interface TrackEntry {
  number?: number;
  codec?: string;
  codecPrivate?: Uint8Array;
  codecDelayNs?: number;
  channels?: number;
}

const hex = (id: number) => `0x${id.toString(16).toUpperCase()}`;
const fail = (msg: string) => new AppError('DECODE_FAILED', `WebM: ${msg}`);

export class WebmDemuxer implements OpusDemuxer {
  private readonly input = new DemuxInput();
  /** Bytes of a skipped element still to drop. */
  private skip = 0;
  private readonly stack: Open[] = [];
  private entry: TrackEntry | undefined;
  private track: number | undefined;
  private sawTracks = false;
  private opusHead: OpusHead | undefined;

  head(): OpusHead | undefined {
    return this.opusHead;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    const packets: Uint8Array[] = [];
    if (this.input.append(bytes)) this.parse(packets);
    return packets;
  }

  end(strict: boolean): void {
    if (strict && (this.skip > 0 || this.input.unparsed > 0)) throw fail('the input ends inside an element (truncated)');
    if (strict) {
      const cut = this.stack.find((o) => o.end !== Infinity && o.end > this.abs);
      if (cut) throw fail(`the input ends inside element ${hex(cut.id)} (truncated)`);
    }
    while (this.stack.length) this.close();
    if (!this.sawTracks) throw fail('no Tracks element: not a WebM audio stream');
  }

  private get abs(): number {
    return this.input.offset;
  }

  private parse(packets: Uint8Array[]): void {
    const input = this.input;
    for (;;) {
      while (this.stack.length && this.stack.at(-1)!.end <= this.abs) this.close();
      if (this.skip > 0) {
        const n = Math.min(this.skip, input.available);
        input.consume(n);
        this.skip -= n;
        if (this.skip > 0) return;
        continue;
      }
      if (this.abs === 0 && input.available > 0 && input.unread()[0] !== EBML >>> 24) throw fail('the stream does not begin with an EBML header');
      const id = this.vint(0, true);
      const size = id && this.vint(id.length, false);
      if (!id || !size) {
        input.wait(input.available + 1);
        return;
      }
      const headerBytes = id.length + size.length;
      // A Cluster of unknown size ends where the next Segment-level element begins; a Segment of
      // unknown size where another EBML stream begins.
      while (this.stack.length && this.stack.at(-1)!.end === Infinity && this.endsUnknown(this.stack.at(-1)!.id, id.value)) this.close();
      const parent = this.stack.at(-1);
      if (!parent && id.value !== EBML && id.value !== SEGMENT && id.value !== VOID) {
        throw fail(
          this.abs === 0 ? 'the stream does not begin with an EBML header' : `unexpected element ${hex(id.value)} at byte ${this.abs} outside the Segment`,
        );
      }
      if (size.value === UNKNOWN) {
        if (id.value !== SEGMENT && id.value !== CLUSTER) throw fail(`element ${hex(id.value)} at byte ${this.abs} has an unknown size`);
      } else if (parent && this.abs + headerBytes + size.value > parent.end) {
        throw fail(`element ${hex(id.value)} at byte ${this.abs} overruns its parent ${hex(parent.id)}`);
      }
      if (MASTERS.has(id.value)) {
        input.consume(headerBytes);
        this.stack.push({ id: id.value, end: size.value === UNKNOWN ? Infinity : this.abs + size.value });
        this.opened(id.value);
        continue;
      }
      if (!LEAVES.has(id.value) || (id.value === BLOCK && parent?.id !== BLOCK_GROUP)) {
        input.consume(headerBytes);
        this.skip = size.value;
        continue;
      }
      if (size.value > MAX_LEAF_BYTES) throw fail(`element ${hex(id.value)} at byte ${this.abs} claims ${size.value} bytes`);
      if (input.available < headerBytes + size.value) {
        input.wait(headerBytes + size.value); // the whole leaf
        return;
      }
      const data = input.unread().subarray(headerBytes, headerBytes + size.value);
      const at = this.abs;
      input.consume(headerBytes + size.value);
      this.leaf(id.value, data, at, packets);
    }
  }

  private endsUnknown(open: number, next: number): boolean {
    if (next === EBML) return true;
    return open === CLUSTER && SEGMENT_CHILDREN.has(next);
  }

  /** An EBML variable-length integer at buf[at], or undefined when its bytes have not arrived. */
  /** The variable-length integer `at` bytes into the unparsed input, or undefined until it is all there. */
  private vint(at: number, isId: boolean): { value: number; length: number } | undefined {
    const buf = this.input.unread();
    if (at >= buf.length) return undefined;
    const first = buf[at]!;
    const length = Math.clz32(first) - 23;
    const offset = this.abs + at;
    if (first === 0 || length > (isId ? 4 : 8)) throw fail(`invalid ${isId ? 'element ID' : 'element size'} at byte ${offset}`);
    if (at + length > buf.length) return undefined;
    let value = isId ? first : first & (0xff >> length);
    let allOnes = value === 0xff >> length;
    for (let i = 1; i < length; i++) {
      const b = buf[at + i]!;
      value = value * 256 + b;
      allOnes &&= b === 0xff;
    }
    if (!isId && allOnes) value = UNKNOWN;
    if (value > Number.MAX_SAFE_INTEGER) throw fail(`element size at byte ${offset} is out of range`);
    return { value, length };
  }

  private opened(id: number): void {
    if (id === TRACKS) this.sawTracks = true;
    if (id === TRACK_ENTRY) this.entry = {};
    if ((id === CLUSTER || id === BLOCK_GROUP) && this.track === undefined)
      this.noOpus(this.sawTracks ? 'the Tracks element holds no A_OPUS track' : 'audio blocks come before the Tracks element');
  }

  private close(): void {
    const o = this.stack.pop()!;
    if (o.id === TRACK_ENTRY && this.entry) {
      const e = this.entry;
      this.entry = undefined;
      if (this.track === undefined && e.codec === 'A_OPUS') {
        if (e.number === undefined) throw fail('the Opus track has no TrackNumber');
        this.opusHead = e.codecPrivate
          ? parseOpusHead(e.codecPrivate)
          : { channels: e.channels ?? 2, preSkip: Math.round(((e.codecDelayNs ?? 0) * 48000) / 1e9), mappingFamily: 0 };
        this.track = e.number;
      }
    }
    if (o.id === TRACKS && this.track === undefined) this.noOpus('the Tracks element holds no A_OPUS track');
  }

  private noOpus(why: string): never {
    // Another codec in a well-formed file is not a decoding failure: the caller may hand it on.
    throw new AppError('UNSUPPORTED_FORMAT', `WebM: ${why}`);
  }

  private leaf(id: number, data: Uint8Array, at: number, packets: Uint8Array[]): void {
    const uint = () => data.reduce((v, b) => v * 256 + b, 0);
    if (id === SIMPLE_BLOCK || id === BLOCK) {
      this.block(data, at, packets);
      return;
    }
    const e = this.entry;
    if (!e || this.stack.at(-1)?.id !== (id === CHANNELS ? AUDIO : TRACK_ENTRY)) return;
    if (id === TRACK_NUMBER) e.number = uint();
    else if (id === CODEC_ID) e.codec = new TextDecoder().decode(data).replace(/\0+$/, '');
    else if (id === CODEC_PRIVATE) e.codecPrivate = data.slice();
    else if (id === CODEC_DELAY) e.codecDelayNs = uint();
    else if (id === CHANNELS) e.channels = uint();
  }

  /** A (Simple)Block: track number, 16-bit timecode, flags, then one frame or a laced run. */
  private block(data: Uint8Array, at: number, packets: Uint8Array[]): void {
    const bad = (why: string) => fail(`block at byte ${at}: ${why}`);
    if (this.track === undefined) this.noOpus('audio blocks come before the Tracks element');
    const first = data[0];
    if (first === undefined || first === 0) throw bad('invalid track number');
    const tnLen = Math.clz32(first) - 23;
    if (tnLen > 8 || data.length < tnLen + 3) throw bad('too short');
    let track = first & (0xff >> tnLen);
    for (let i = 1; i < tnLen; i++) track = track * 256 + data[i]!;
    if (track !== this.track) return;
    const flags = data[tnLen + 2]!;
    let p = tnLen + 3;
    const lacing = (flags >> 1) & 3;
    if (lacing === 0) {
      packets.push(data.slice(p));
      return;
    }
    if (p >= data.length) throw bad('laced block without a frame count');
    const count = data[p++]! + 1;
    const sizes: number[] = [];
    if (lacing === 1) {
      // Xiph: each size is a run of 255s ended by a smaller byte.
      for (let i = 0; i < count - 1; i++) {
        let s = 0;
        for (;;) {
          if (p >= data.length) throw bad('lace sizes run past the block');
          const b = data[p++]!;
          s += b;
          if (b < 255) break;
        }
        sizes.push(s);
      }
    } else if (lacing === 3) {
      // EBML: the first size as an unsigned vint, then signed differences.
      for (let i = 0; i < count - 1; i++) {
        if (p >= data.length) throw bad('lace sizes run past the block');
        const len = Math.clz32(data[p]!) - 23;
        if (data[p] === 0 || len > 8 || p + len > data.length) throw bad('invalid EBML lace size');
        let v = data[p]! & (0xff >> len);
        for (let k = 1; k < len; k++) v = v * 256 + data[p + k]!;
        p += len;
        sizes.push(i === 0 ? v : sizes[i - 1]! + v - (2 ** (7 * len - 1) - 1));
      }
    }
    const payload = data.length - p;
    if (lacing === 2) {
      if (payload % count !== 0) throw bad(`${payload} bytes do not split into ${count} equal frames`);
      for (let i = 0; i < count - 1; i++) sizes.push(payload / count);
    }
    const known = sizes.reduce((a, s) => a + s, 0);
    if (sizes.some((s) => s < 0) || known > payload) throw bad('lace sizes exceed the block');
    sizes.push(payload - known);
    for (const s of sizes) {
      packets.push(data.slice(p, p + s));
      p += s;
    }
  }
}
