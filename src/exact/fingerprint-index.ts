// Inverted index: hash -> postings (track, frame), in LMDB.
//
// Layout, chosen for size: a bucket is a hash without its low KEY_LOW_BITS bits, and one LMDB
// entry holds every posting of one bucket in one generation, 8 bytes each:
//   u32 LE track number | u32 LE (low hash bits << TIME_BITS | anchor frame).
// One entry per posting costs ~100 bytes in LMDB; this costs ~8 plus a share of one entry.
//
// Each ingest commit writes its postings as a new generation, keyed (generation, bucket), so its
// entries go after every existing key (LMDB's append mode: full pages, nothing rewritten).
// Rewriting buckets in place instead copied every page at each commit, and LMDB keeps the
// superseded copies in the file: 19.7 MB per hour of audio for 4.4 MB/h of postings. Lookups read
// a bucket in each generation, so generations are merged like an LSM tree: whenever the newest is
// at least half the size of the one before, the two become one (appended, the old entries freed
// for later commits to reuse). Their count stays logarithmic in the index size, and a batch
// ingest ends with one or two. A bucket grown too common keeps a marker instead (see COMMON).
// Each track also keeps the list of buckets it touched, so that deleting it rewrites only those,
// and its sketch (the sign bits of each frame's word, native/src/sketch.h), which verifies candidates.
import type { Database } from 'lmdb';
import { AppError } from '../base/errors.js';
import { FINGERPRINT_VERSION, type Fingerprint, type Hashes } from './fingerprint.js';
import type { DataStore } from './lmdb.js';

const HASH_BITS = 22;
const KEY_LOW_BITS = 3;
const BUCKETS = 2 ** (HASH_BITS - KEY_LOW_BITS);
/** Layout of the index entries: part of the version that an index is checked against on open. */
const LAYOUT = 'gen1+sketch16';
const TIME_BITS = 32 - KEY_LOW_BITS;
const TIME_MASK = 2 ** TIME_BITS - 1;
const POSTING_BYTES = 8;
/** A query's hashes are sorted as bucket * QUERY_SLOTS + index: far more than a 30 s clip has. */
const QUERY_SLOTS = 2 ** 24;
/**
 * A bucket with more postings is a common sound (a low tone, a drum hit) that says little about
 * which track plays, while such buckets supplied most of a query's postings and a third of the
 * index's bytes (LMDB's overflow pages: 250 postings still fit half a page). Its entry keeps only
 * COMMON, and lookups skip it. Deleting tracks later does not bring its postings back (a rebuild
 * would).
 */
const MAX_BUCKET_POSTINGS = 250;
const MAX_BUCKET_BYTES = MAX_BUCKET_POSTINGS * POSTING_BYTES;
/** The entry of a common bucket: one byte, never a whole number of postings. */
const COMMON = Buffer.from([0]);
const isCommon = (b: Buffer) => b.length % POSTING_BYTES !== 0;

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
  /** Pitch of the query hash's anchor, in cents (Hashes.cents). */
  queryCents: Uint32Array;
}

/** A generation's number and its posting count (msgpack in index_meta, oldest first). */
interface Generation {
  id: number;
  postings: number;
}

export class FingerprintIndex {
  private readonly postings: Database<Buffer, number>;
  private readonly trackKeys: Database<Buffer, number>;
  private readonly sketches: Database<Buffer, number>;
  private readonly meta: Database<unknown, string>;

  constructor(private readonly store: DataStore) {
    const env = store.env;
    // Keys are generation * BUCKETS + bucket, beyond 32 bits: the default (ordered) number keys.
    this.postings = env.openDB<Buffer, number>({ name: 'postings', encoding: 'binary' });
    this.trackKeys = env.openDB<Buffer, number>({ name: 'track_keys', keyEncoding: 'uint32', encoding: 'binary' });
    this.sketches = env.openDB<Buffer, number>({ name: 'sketches', keyEncoding: 'uint32', encoding: 'binary' });
    this.meta = env.openDB<unknown, string>({ name: 'index_meta', encoding: 'msgpack' });
    const expected = `${FINGERPRINT_VERSION}|${LAYOUT}`;
    const version = this.meta.get('version');
    if (version === undefined) {
      this.meta.putSync('version', expected);
    } else if (version !== expected) {
      throw new AppError('INDEX_MISMATCH', 'the fingerprint index was built with other parameters or by an older version: run `audio-ident rebuild-index`');
    }
  }

  /**
   * Adds the postings of several tracks as a new generation. Call inside DataStore.transaction
   * together with the catalog writes that make the tracks visible.
   */
  add(tracks: { track: number; fp: Fingerprint }[]): void {
    let n = 0;
    for (const t of tracks) n += t.fp.hashes.length;
    if (n === 0) return;
    // Sort postings by bucket: bucket * 2^32 + posting number is exact in a double.
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
      this.sketches.put(track, Buffer.from(Uint16Array.from(fp.sketches[0]!, (w) => w & 0xffff).buffer));
    }
    order.sort();
    const gens = this.generations();
    const gen = { id: gens.length ? gens[gens.length - 1]!.id + 1 : 0, postings: n };
    for (let a = 0; a < n; ) {
      const bucket = Math.floor(order[a]! / 2 ** 32);
      let b = a + 1;
      while (b < n && Math.floor(order[b]! / 2 ** 32) === bucket) b++;
      if (b - a > MAX_BUCKET_POSTINGS) {
        this.postings.putSync(gen.id * BUCKETS + bucket, COMMON, { append: true });
        gen.postings -= b - a;
        a = b;
        continue;
      }
      const buf = Buffer.allocUnsafe((b - a) * POSTING_BYTES);
      for (let k = a, at = 0; k < b; k++, at += POSTING_BYTES) {
        const p = order[k]! % 2 ** 32;
        buf.writeUInt32LE(word0[p]!, at);
        buf.writeUInt32LE(word1[p]!, at + 4);
      }
      this.postings.putSync(gen.id * BUCKETS + bucket, buf, { append: true });
      a = b;
    }
    let stored = gen.postings;
    gens.push(gen);
    while (gens.length >= 2 && 2 * gens[gens.length - 1]!.postings >= gens[gens.length - 2]!.postings) {
      const { dropped, ...merged } = this.merge(gens.splice(gens.length - 2, 2));
      stored -= dropped;
      gens.push(merged);
    }
    this.meta.putSync('generations', gens);
    this.bumpCounts(tracks.length, stored);
  }

  /** Removes every posting of a track. Call inside DataStore.transaction. */
  remove(track: number): void {
    const list = this.trackKeys.getBinary(track);
    if (!list) return;
    const gens = this.generations();
    let removed = 0;
    for (const bucket of decodeKeyList(list)) {
      for (const gen of gens) {
        const key = gen.id * BUCKETS + bucket;
        const old = this.postings.getBinary(key);
        if (!old || isCommon(old)) continue;
        const kept = Buffer.allocUnsafe(old.length);
        let at = 0;
        for (let o = 0; o < old.length; o += POSTING_BYTES) {
          if (old.readUInt32LE(o) === track) {
            gen.postings--;
            removed++;
            continue;
          }
          old.copy(kept, at, o, o + POSTING_BYTES);
          at += POSTING_BYTES;
        }
        if (at === 0) this.postings.removeSync(key);
        else if (at !== old.length) this.postings.putSync(key, kept.subarray(0, at));
      }
    }
    this.trackKeys.remove(track);
    this.sketches.remove(track);
    // An emptied generation has no entries left: lookups need not visit it.
    this.meta.putSync(
      'generations',
      gens.filter((g) => g.postings > 0),
    );
    this.bumpCounts(-1, -removed);
  }

  /** A track's sketch words, one per frame of the track, or undefined for a track not indexed. */
  sketch(track: number): Uint16Array | undefined {
    const b = this.sketches.getBinary(track);
    if (!b) return undefined;
    // Copied: LMDB's bytes need not be aligned for a 16-bit view.
    const words = new Uint16Array(b.length / 2);
    new Uint8Array(words.buffer).set(b);
    return words;
  }

  /** Numbers of the tracks that have postings. */
  trackNumbers(): number[] {
    return [...this.trackKeys.getKeys()];
  }

  /**
   * Finds the postings of a query's hashes, skipping buckets that hold more than
   * MAX_BUCKET_POSTINGS: a hash that recurs that often is a common sound (a low tone, a drum
   * hit) and says little about which track plays, while such buckets supplied most of a query's
   * postings and of its votes to count (measured by bench/accuracy.ts).
   */
  lookup(q: Hashes): QueryPostings {
    let cap = Math.max(1024, q.hashes.length * 4);
    let track = new Uint32Array(cap);
    let offset = new Int32Array(cap);
    let queryTime = new Uint32Array(cap);
    let hash = new Uint32Array(cap);
    let queryCents = new Uint32Array(cap);
    let n = 0;
    const lowMask = (1 << KEY_LOW_BITS) - 1;
    const bases = this.generations().map((g) => g.id * BUCKETS);
    // A query's hashes fall in about half as many buckets (both phases of a frame often give the
    // same pair): hashes are visited by bucket, so that one read and one scan serve them all.
    // Postings come out in bucket order, not time order.
    const keys = new Float64Array(q.hashes.length);
    for (let j = 0; j < keys.length; j++) keys[j] = (q.hashes[j]! >>> KEY_LOW_BITS) * QUERY_SLOTS + j;
    keys.sort();
    const order = new Int32Array(keys.length);
    for (let k = 0; k < keys.length; k++) order[k] = keys[k]! % QUERY_SLOTS;
    for (let g = 0; g < order.length; ) {
      const bucket = q.hashes[order[g]!]! >>> KEY_LOW_BITS;
      let lows = 0; // bit l set: some hash of the group has low bits l
      let end = g;
      while (end < order.length && q.hashes[order[end]!]! >>> KEY_LOW_BITS === bucket) lows |= 1 << (q.hashes[order[end++]!]! & lowMask);
      const first = g;
      g = end;
      if (bases.length > 1) {
        // The buffer of getBinaryFast is reused by the next get: sizes first, postings after.
        let bytes = 0;
        for (const base of bases) {
          const b = this.postings.getBinaryFast(base + bucket);
          if (b) bytes += isCommon(b) ? Infinity : b.length;
        }
        if (bytes > MAX_BUCKET_BYTES) continue;
      }
      for (const base of bases) {
        const buf = this.postings.getBinaryFast(base + bucket);
        if (!buf || isCommon(buf)) continue;
        for (let o = 0; o < buf.length; o += POSTING_BYTES) {
          const w1 = buf.readUInt32LE(o + 4);
          const low = w1 >>> TIME_BITS;
          if (!((lows >>> low) & 1)) continue;
          for (let k = first; k < end; k++) {
            const j = order[k]!;
            const h = q.hashes[j]!;
            if ((h & lowMask) !== low) continue;
            if (n === cap) {
              cap *= 2;
              track = grow(track, cap);
              offset = grow(offset, cap);
              queryTime = grow(queryTime, cap);
              hash = grow(hash, cap);
              queryCents = grow(queryCents, cap);
            }
            const qt = q.times[j]!;
            track[n] = buf.readUInt32LE(o);
            offset[n] = (w1 & TIME_MASK) - qt;
            queryTime[n] = qt;
            hash[n] = h;
            queryCents[n] = q.cents[j]!;
            n++;
          }
        }
      }
    }
    return { length: n, track, offset, queryTime, hash, queryCents };
  }

  /**
   * Reads a sample of every part of the index (its bookkeeping, every track's key list, the
   * sketches and postings at random places) and returns the track numbers it holds. A damaged
   * data file throws here (LMDB's MDB_CORRUPTED, or bytes that do not parse) rather than in a
   * search. A sample, so that it costs milliseconds on any size of index: `rebuild-index`
   * rewrites the whole of it.
   */
  check(samples = 256): number[] {
    const tracks = this.trackNumbers();
    const counted = (this.meta.get('tracks') as number | undefined) ?? 0;
    if (counted !== tracks.length) throw new Error(`the index counts ${counted} tracks but lists ${tracks.length}`);
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    for (let i = 0; i < Math.min(samples, tracks.length); i++) {
      const t = pick(tracks);
      if (!this.trackKeys.getBinary(t)) throw new Error(`track ${t} has no key list`);
      if (!this.sketches.getBinary(t)) throw new Error(`track ${t} has no sketch`);
    }
    for (const g of this.generations()) {
      for (let i = 0; i < samples; i++) {
        for (const { value } of this.postings.getRange({ start: g.id * BUCKETS + Math.floor(Math.random() * BUCKETS), limit: 2 })) {
          if (value.length % POSTING_BYTES !== 0 && !isCommon(value)) throw new Error('a postings bucket does not parse');
        }
      }
    }
    return tracks;
  }

  /** Reads every entry of the index, so that any damaged page shows (index-scan.ts runs it apart). */
  scan(): { entries: number } {
    let entries = 0;
    for (const { value } of this.postings.getRange()) {
      if (value.length % POSTING_BYTES !== 0 && !isCommon(value)) throw new Error('a postings bucket does not parse');
      entries++;
    }
    for (const t of this.trackNumbers()) if (!this.trackKeys.getBinary(t) || !this.sketches.getBinary(t)) throw new Error(`track ${t} is incomplete`);
    return { entries };
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

  private generations(): Generation[] {
    return ((this.meta.get('generations') as Generation[] | undefined) ?? []).map((g) => ({ ...g }));
  }

  /** Writes two generations' postings as one new generation (appended) and removes theirs. */
  private merge([older, newer]: Generation[]): Generation & { dropped: number } {
    const id = newer!.id + 1;
    const keys = (g: Generation) => [...this.postings.getKeys({ start: g.id * BUCKETS, end: (g.id + 1) * BUCKETS })];
    const a = keys(older!);
    const b = keys(newer!);
    let dropped = 0;
    for (let i = 0, j = 0; i < a.length || j < b.length; ) {
      const ba = i < a.length ? a[i]! - older!.id * BUCKETS : Infinity;
      const bb = j < b.length ? b[j]! - newer!.id * BUCKETS : Infinity;
      const bucket = Math.min(ba, bb);
      const parts: Buffer[] = [];
      if (ba === bucket) parts.push(this.postings.getBinary(a[i++]!)!);
      if (bb === bucket) parts.push(this.postings.getBinary(b[j++]!)!);
      let merged = Buffer.concat(parts);
      if (parts.some(isCommon) || merged.length > MAX_BUCKET_BYTES) {
        for (const p of parts) if (!isCommon(p)) dropped += p.length / POSTING_BYTES;
        merged = COMMON;
      }
      this.postings.putSync(id * BUCKETS + bucket, merged, { append: true });
    }
    for (const key of [...a, ...b]) this.postings.removeSync(key);
    return { id, postings: older!.postings + newer!.postings - dropped, dropped };
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
    let b: number;
    do {
      b = buf[at++]!;
      d += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    prev += d;
    yield prev;
  }
}
