// Inverted index: hash -> postings (track, frame), in LMDB.
//
// Layout, chosen for size: one LMDB entry per key, where a key is a hash without its low
// KEY_LOW_BITS bits, and the value packs all postings of that key, 8 bytes each:
//   u32 LE track number | u32 LE (low hash bits << TIME_BITS | anchor frame).
// One entry per posting costs ~100 bytes in LMDB; this costs ~8 plus a share of one entry.
// Each track also keeps the list of keys it touched, so that deleting it rewrites only those.
import type { Database } from 'lmdb';
import { AppError } from '../errors.js';
import { FINGERPRINT_VERSION, type Hashes } from './fingerprint.js';
import type { DataStore } from './store.js';

const KEY_LOW_BITS = 3;
const TIME_BITS = 32 - KEY_LOW_BITS;
const TIME_MASK = 2 ** TIME_BITS - 1;
const POSTING_BYTES = 8;

export interface IndexStats {
  tracks: number;
  postings: number;
  keys: number;
  /** Bytes of the LMDB environment in use (pages * page size). */
  bytes: number;
}

/** Postings that matched a query, one element per (query hash, posting) pair. */
export interface QueryPostings {
  length: number;
  track: Uint32Array;
  /** Catalog frame minus query frame: where in the track the query would start. */
  offset: Int32Array;
  /** Query frame of the matching hash. */
  queryTime: Uint32Array;
  /** The matching hash. */
  hash: Uint32Array;
}

export class FingerprintIndex {
  private readonly postings: Database<Buffer, number>;
  private readonly trackKeys: Database<Buffer, number>;
  private readonly meta: Database<unknown, string>;

  constructor(private readonly store: DataStore) {
    const env = store.env;
    this.postings = env.openDB<Buffer, number>({ name: 'postings', keyEncoding: 'uint32', encoding: 'binary' });
    this.trackKeys = env.openDB<Buffer, number>({ name: 'track_keys', keyEncoding: 'uint32', encoding: 'binary' });
    this.meta = env.openDB<unknown, string>({ name: 'index_meta', encoding: 'msgpack' });
    const version = this.meta.get('version');
    if (version === undefined) {
      this.meta.putSync('version', FINGERPRINT_VERSION);
    } else if (version !== FINGERPRINT_VERSION) {
      throw new AppError('INDEX_MISMATCH', 'the fingerprint index was built with other parameters: run `audio-ident rebuild-index`');
    }
  }

  /**
   * Adds the postings of several tracks. Call inside DataStore.transaction together with the
   * catalog writes that make the tracks visible.
   */
  add(tracks: { track: number; fp: Hashes }[]): void {
    let n = 0;
    for (const t of tracks) n += t.fp.hashes.length;
    // Sort postings by key: key * 2^32 + posting number is exact in a double (key < 2^29).
    const order = new Float64Array(n);
    const word0 = new Uint32Array(n);
    const word1 = new Uint32Array(n);
    let i = 0;
    for (const { track, fp } of tracks) {
      const keys = new Set<number>();
      for (let j = 0; j < fp.hashes.length; j++, i++) {
        const h = fp.hashes[j]!;
        const t = fp.times[j]!;
        if (t > TIME_MASK) throw new AppError('INVALID_ARGUMENT', 'track too long for the index');
        const key = h >>> KEY_LOW_BITS;
        keys.add(key);
        order[i] = key * 2 ** 32 + i;
        word0[i] = track;
        word1[i] = (((h & ((1 << KEY_LOW_BITS) - 1)) << TIME_BITS) | t) >>> 0;
      }
      this.trackKeys.put(track, encodeKeyList([...keys].sort((a, b) => a - b)));
    }
    order.sort();
    for (let a = 0; a < n; ) {
      const key = Math.floor(order[a]! / 2 ** 32);
      let b = a + 1;
      while (b < n && Math.floor(order[b]! / 2 ** 32) === key) b++;
      const old = this.postings.getBinary(key);
      const oldLen = old ? old.length : 0;
      const buf = Buffer.allocUnsafe(oldLen + (b - a) * POSTING_BYTES);
      if (old) old.copy(buf, 0);
      let at = oldLen;
      for (let k = a; k < b; k++) {
        const p = order[k]! % 2 ** 32;
        buf.writeUInt32LE(word0[p]!, at);
        buf.writeUInt32LE(word1[p]!, at + 4);
        at += POSTING_BYTES;
      }
      this.postings.put(key, buf);
      a = b;
    }
    this.bumpCounts(tracks.length, n);
  }

  /** Removes every posting of a track. Call inside DataStore.transaction. */
  remove(track: number): void {
    const list = this.trackKeys.getBinary(track);
    if (!list) return;
    let removed = 0;
    for (const key of decodeKeyList(list)) {
      const old = this.postings.getBinary(key);
      if (!old) continue;
      const kept = Buffer.allocUnsafe(old.length);
      let at = 0;
      for (let o = 0; o < old.length; o += POSTING_BYTES) {
        if (old.readUInt32LE(o) === track) {
          removed++;
          continue;
        }
        old.copy(kept, at, o, o + POSTING_BYTES);
        at += POSTING_BYTES;
      }
      if (at === 0) this.postings.remove(key);
      else if (at !== old.length) this.postings.put(key, kept.subarray(0, at));
    }
    this.trackKeys.remove(track);
    this.bumpCounts(-1, -removed);
  }

  /** Numbers of the tracks that have postings. */
  trackNumbers(): number[] {
    return [...this.trackKeys.getKeys()];
  }

  /** Finds the postings of a query's hashes. */
  lookup(q: Hashes): QueryPostings {
    let cap = Math.max(1024, q.hashes.length * 4);
    let track = new Uint32Array(cap);
    let offset = new Int32Array(cap);
    let queryTime = new Uint32Array(cap);
    let hash = new Uint32Array(cap);
    let n = 0;
    const lowMask = (1 << KEY_LOW_BITS) - 1;
    for (let j = 0; j < q.hashes.length; j++) {
      const h = q.hashes[j]!;
      const qt = q.times[j]!;
      const buf = this.postings.getBinaryFast(h >>> KEY_LOW_BITS);
      if (!buf) continue;
      const low = h & lowMask;
      for (let o = 0; o < buf.length; o += POSTING_BYTES) {
        const w1 = buf.readUInt32LE(o + 4);
        if (w1 >>> TIME_BITS !== low) continue;
        if (n === cap) {
          cap *= 2;
          track = grow(track, cap);
          offset = grow(offset, cap);
          queryTime = grow(queryTime, cap);
          hash = grow(hash, cap);
        }
        track[n] = buf.readUInt32LE(o);
        offset[n] = (w1 & TIME_MASK) - qt;
        queryTime[n] = qt;
        hash[n] = h;
        n++;
      }
    }
    return { length: n, track, offset, queryTime, hash };
  }

  stats(): IndexStats {
    const s = this.store.env.getStats() as { pageSize: number; treeBranchPageCount?: number; lastPageNumber?: number };
    const keys = (this.postings.getStats() as { entryCount: number }).entryCount;
    return {
      tracks: (this.meta.get('tracks') as number | undefined) ?? 0,
      postings: (this.meta.get('postings') as number | undefined) ?? 0,
      keys,
      bytes: ((s.lastPageNumber ?? 0) + 1) * s.pageSize,
    };
  }

  private bumpCounts(tracks: number, postings: number): void {
    this.meta.put('tracks', ((this.meta.get('tracks') as number | undefined) ?? 0) + tracks);
    this.meta.put('postings', ((this.meta.get('postings') as number | undefined) ?? 0) + postings);
  }
}

function grow<T extends Uint32Array | Int32Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

// Sorted keys as varint deltas: about 1.5 bytes per key instead of 4.
function encodeKeyList(keys: number[]): Buffer {
  const out = Buffer.allocUnsafe(keys.length * 5);
  let at = 0;
  let prev = 0;
  for (const k of keys) {
    let d = k - prev;
    prev = k;
    while (d >= 0x80) {
      out[at++] = (d & 0x7f) | 0x80;
      d >>>= 7;
    }
    out[at++] = d;
  }
  return Buffer.from(out.subarray(0, at));
}

function* decodeKeyList(buf: Buffer): Generator<number> {
  let prev = 0;
  for (let at = 0; at < buf.length; ) {
    let d = 0;
    let shift = 0;
    let b;
    do {
      b = buf[at++]!;
      d += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    prev += d;
    yield prev;
  }
}
