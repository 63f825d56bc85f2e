// The embedded vector store: two usearch HNSW indexes (track vectors, chunk vectors; f16, cosine)
// under DATA/vibe, memory-mapped read-only by readers. The payload of a vector lives in its key
// (vector-store.ts). The indexes hold the vectors less their kind's centre (centre.ts); the
// vectors as given are kept beside them, since re-centring rebuilds an index from them and a
// hit's vector (for query expansion) is read from them, and their keys too, since usearch cannot
// enumerate its keys and deletion and the orphan sweep need them.
//
// Crash safety: a write produces a new generation of all the files (tracks-G.usearch,
// chunks-G.usearch, keys-G.bin, vectors-G.bin, centres-G.bin), syncs them, then replaces
// manifest.json (model, dimension, generation) by rename. The manifest is the commit point: a
// crash before it leaves the old generation in force and stray files that the next write
// removes. Writers of several processes (a CLI ingest beside a server on one PostgreSQL) take
// turns through a lock file; readers notice a newer generation by the manifest and map it.
//
// A store opened by the server or the CLI writes through a worker thread of its own
// (usearch-writer.ts), which holds the writable copy of the indexes: updating and saving them
// takes about 0.2 s at 7000 1506-d chunk vectors, and a re-centring seconds, which would
// otherwise hold the event loop (and every live session) for that long.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import usearch, { type Index } from 'usearch';
import { Channel } from '../../base/channel.js';
import { AppError } from '../../base/errors.js';
import { isAlive } from '../../base/process.js';
import { centreFor, centredUnit, momentsOf, unit } from './centre.js';
import {
  assertSpace,
  parseKey,
  pointKey,
  type Found,
  type Query,
  type VectorHit,
  type VectorKind,
  type VectorPoint,
  type VectorSpace,
  type VectorStore,
} from './vector-store.js';

const KINDS: readonly VectorKind[] = ['track', 'chunk'];
const MANIFEST = 'manifest.json';
const LOCK = 'write.lock';
const LOCK_WAIT_MS = 60_000;

interface Manifest {
  generation: number;
  /** Absent when the store is empty. */
  space?: VectorSpace;
}

type Vectors = Record<VectorKind, Map<number, Float32Array>>;

/** What a write decides: the vectors as given, by kind and key. The indexes follow from them. */
interface Contents {
  space: VectorSpace | undefined;
  vectors: Vectors;
}

interface Loaded extends Contents {
  generation: number;
  /** Per kind: its centre and its index of the centred vectors; absent while the store is empty. */
  indexed: Record<VectorKind, { centre: Float32Array; index: Index }> | undefined;
  /** Whether the indexes are writable copies rather than read-only maps of the files. */
  inMemory: boolean;
}

const noVectors = (): Vectors => ({ track: new Map(), chunk: new Map() });

/** A write, as the writer thread receives it. */
export type WriteOp = { op: 'put'; space: VectorSpace; points: VectorPoint[]; replace: boolean } | { op: 'remove'; fpIds: number[] } | { op: 'clear' };

export class UsearchStore implements VectorStore {
  backend(): 'usearch' {
    return 'usearch';
  }
  private state: Loaded;
  /** Writes of this process, one at a time. */
  private writing: Promise<void> = Promise.resolve();
  /** A read of a newer generation under way. */
  private loading: Promise<Loaded> | undefined;

  private constructor(
    private readonly dir: string,
    /** Where writes are done: absent in the writer thread itself. */
    private readonly writer: WriterThread | undefined,
  ) {
    // Nothing read yet: the first use reads the committed generation.
    this.state = { generation: -1, space: undefined, vectors: noVectors(), indexed: undefined, inMemory: true };
  }

  /** The store under a data dir; `writeHere` is for the writer thread, which does the writing. */
  static open(dataDir: string, opts: { writeHere?: boolean } = {}): UsearchStore {
    const dir = path.join(dataDir, 'vibe');
    mkdirSync(dir, { recursive: true });
    return new UsearchStore(dir, opts.writeHere ? undefined : new WriterThread(dataDir));
  }

  async space(): Promise<VectorSpace | undefined> {
    return (await this.current()).space;
  }

  async add(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    if (points.length === 0) return;
    return this.put(space, points, false);
  }

  replaceAll(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    return this.put(space, points, true);
  }

  private async put(space: VectorSpace, points: VectorPoint[], replace: boolean): Promise<void> {
    for (const p of points) {
      if (p.vector.length !== space.dim) throw new AppError('INVALID_ARGUMENT', `a ${p.vector.length}-d vector for the ${space.dim}-d space ${space.id}`);
    }
    // Refused here too, so that a mismatch is told without a trip to the writer.
    assertSpace(replace ? undefined : (await this.current()).space, space, this.dir);
    return this.perform({ op: 'put', space, points, replace });
  }

  /** Does a write: in the writer thread, or here when this is it. */
  perform(w: WriteOp): Promise<void> {
    if (this.writer) return this.writer.run(w);
    if (w.op === 'clear') return this.write(() => ({ space: undefined, vectors: noVectors() }));
    if (w.op === 'remove') {
      const gone = new Set(w.fpIds);
      return this.write((s) => {
        const vectors = noVectors();
        for (const kind of KINDS) for (const [k, v] of s.vectors[kind]) if (!gone.has(parseKey(k).fpId)) vectors[kind].set(k, v);
        return { space: s.space, vectors };
      });
    }
    const { space, points, replace } = w;
    return this.write((current) => {
      const s: Contents = replace ? { space: undefined, vectors: noVectors() } : current;
      assertSpace(s.space, space, this.dir);
      const vectors: Vectors = { track: new Map(s.vectors.track), chunk: new Map(s.vectors.chunk) };
      // A re-added track replaces its vectors instead of doubling them: its key is the same.
      for (const p of points) vectors[p.kind].set(pointKey(p.fpId, p.kind, p.startSeconds), Float32Array.from(p.vector));
      return { space, vectors };
    });
  }

  async removeTracks(fpIds: number[]): Promise<void> {
    const gone = new Set(fpIds);
    const { vectors } = await this.current();
    if (!KINDS.some((kind) => [...vectors[kind].keys()].some((k) => gone.has(parseKey(k).fpId)))) return;
    return this.perform({ op: 'remove', fpIds });
  }

  async search(space: VectorSpace, query: Query, kind: VectorKind, k: number): Promise<Found> {
    const s = await this.current();
    assertSpace(s.space, space, this.dir);
    const at = s.indexed?.[kind];
    if (!at || at.index.size() === 0) return { query: unit(query.vector), hits: [] };
    const q = query.centred ? unit(query.vector) : centredUnit(query.vector, at.centre);
    const m = at.index.search(q, Math.min(k, at.index.size()), 1);
    const hits = Array.from(m.keys, (key, i) => ({ ...parseKey(Number(key)), cosine: 1 - m.distances[i]! }));
    return { query: q, hits };
  }

  async compared(space: VectorSpace, hits: VectorHit[]): Promise<Float32Array[]> {
    const s = await this.current();
    assertSpace(s.space, space, this.dir);
    return hits.map((h) => {
      const v = s.vectors[h.kind].get(pointKey(h.fpId, h.kind, h.startSeconds));
      if (!v || !s.indexed) throw new AppError('NOT_FOUND', `no ${h.kind} vector of track ${h.fpId} at ${h.startSeconds} s`);
      return centredUnit(v, s.indexed[h.kind].centre);
    });
  }

  async trackNumbers(): Promise<number[]> {
    const { vectors } = await this.current();
    return [...new Set(KINDS.flatMap((kind) => [...vectors[kind].keys()].map((k) => parseKey(k).fpId)))];
  }

  async count(): Promise<Record<VectorKind, number>> {
    const { vectors } = await this.current();
    return { track: vectors.track.size, chunk: vectors.chunk.size };
  }

  clear(): Promise<void> {
    return this.perform({ op: 'clear' });
  }

  async close(): Promise<void> {
    await this.writing;
    await this.writer?.close();
  }

  /** The newest committed generation, mapped anew when another process has written one. */
  private async current(): Promise<Loaded> {
    const m = readManifest(this.dir);
    if ((m?.generation ?? 0) !== this.state.generation) {
      // One read at a time; a caller that finds it stale again reads again.
      this.loading ??= this.load(false).finally(() => (this.loading = undefined));
      this.state = await this.loading;
    }
    return this.state;
  }

  /** Reads the committed generation: memory-mapped (read-only), or copied in memory to write. */
  private async load(inMemory: boolean): Promise<Loaded> {
    for (let attempt = 0; ; attempt++) {
      const m = readManifest(this.dir);
      if (!m?.space) return { generation: m?.generation ?? 0, space: undefined, vectors: noVectors(), indexed: undefined, inMemory: true };
      const space = m.space;
      try {
        const file = (name: string) => path.join(this.dir, `${name}-${m.generation}`);
        // Read off the event loop: the vectors file is 6 KB a vector.
        const [keys, all, centres] = await Promise.all([
          readFile(`${file('keys')}.bin`).then((b) => floats(b, Float64Array)),
          readFile(`${file('vectors')}.bin`).then((b) => floats(b, Float32Array)),
          readFile(`${file('centres')}.bin`).then((b) => floats(b, Float32Array)),
        ]);
        const vectors = noVectors();
        keys.forEach((k, i) => vectors[parseKey(k).kind].set(k, all.subarray(i * space.dim, (i + 1) * space.dim)));
        const indexed = Object.fromEntries(
          KINDS.map((kind, i) => {
            const index = newIndex(space.dim);
            if (inMemory) index.load(`${file(`${kind}s`)}.usearch`);
            else index.view(`${file(`${kind}s`)}.usearch`);
            return [kind, { centre: centres.subarray(i * space.dim, (i + 1) * space.dim), index }];
          }),
        ) as Loaded['indexed'];
        return { generation: m.generation, space, vectors, indexed, inMemory };
      } catch (e) {
        // A writer of another process replaced this generation between our reads: read again.
        if (attempt < 3 && readManifest(this.dir)?.generation !== m.generation) continue;
        throw e;
      }
    }
  }

  private write(change: (s: Loaded) => Contents): Promise<void> {
    const run = async () => {
      const unlock = await this.lock();
      try {
        let s = await this.current();
        if (!s.inMemory) s = await this.load(true);
        const next = change(s);
        const generation = s.generation + 1;
        const size = next.vectors.track.size + next.vectors.chunk.size;
        // An emptied store forgets its space: the next vectors may be of any model.
        const space = size > 0 ? next.space : undefined;
        const indexed = space
          ? (Object.fromEntries(KINDS.map((kind) => [kind, reindex(space.dim, s.vectors[kind], next.vectors[kind], s.indexed?.[kind])])) as Loaded['indexed'])
          : undefined;
        // The indexes may have been updated in place, so the state follows them at once; a write
        // that fails reloads the committed generation.
        this.state = space
          ? { generation: s.generation, space, vectors: next.vectors, indexed, inMemory: true }
          : { generation: s.generation, space: undefined, vectors: noVectors(), indexed: undefined, inMemory: true };
        try {
          if (space && indexed) {
            const file = (name: string) => path.join(this.dir, `${name}-${generation}`);
            for (const kind of KINDS) {
              indexed[kind].index.save(`${file(`${kind}s`)}.usearch`);
              await syncFile(`${file(`${kind}s`)}.usearch`);
            }
            const entries = KINDS.flatMap((kind) => [...next.vectors[kind]]);
            const all = new Float32Array(entries.length * space.dim);
            entries.forEach(([, v], i) => all.set(v, i * space.dim));
            await writeDurably(`${file('keys')}.bin`, bytes(Float64Array.from(entries, ([k]) => k)));
            await writeDurably(`${file('vectors')}.bin`, bytes(all));
            const centres = new Float32Array(KINDS.length * space.dim);
            KINDS.forEach((kind, i) => centres.set(indexed[kind].centre, i * space.dim));
            await writeDurably(`${file('centres')}.bin`, bytes(centres));
          }
          await writeDurably(path.join(this.dir, `${MANIFEST}.tmp`), JSON.stringify({ generation, ...(space ? { space } : {}) } satisfies Manifest));
          await rename(path.join(this.dir, `${MANIFEST}.tmp`), path.join(this.dir, MANIFEST));
        } catch (e) {
          this.state = await this.load(false);
          throw e;
        }
        this.state = { ...this.state, generation };
        await syncFile(this.dir);
        this.removeStale();
      } finally {
        unlock();
      }
    };
    const p = this.writing.then(run);
    this.writing = p.catch(() => undefined);
    return p;
  }

  /** Files of other generations: superseded, or written by a writer that crashed before committing. */
  private removeStale(): void {
    const keep = this.state.generation;
    for (const f of readdirSync(this.dir)) {
      const g = /^(?:tracks|chunks|keys|vectors|centres)-(\d+)\.(?:usearch|bin)$/.exec(f);
      if ((g && Number(g[1]) !== keep) || f === `${MANIFEST}.tmp`) rmSync(path.join(this.dir, f), { force: true });
    }
  }

  private async lock(): Promise<() => void> {
    const file = path.join(this.dir, LOCK);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fd = openSync(file, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return () => rmSync(file, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let holder = NaN;
      try {
        holder = Number(readFileSync(file, 'utf8'));
      } catch {
        continue; // released meanwhile
      }
      // A holder that died (killed mid-write) leaves its lock behind; an empty file is one caught
      // between creating and writing it, so it gets the benefit of the doubt until the deadline.
      if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
        rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new AppError('INTERNAL', `the vibe index in ${this.dir} stayed locked by process ${holder} for ${LOCK_WAIT_MS / 1000} s`);
      await sleep(20);
    }
  }
}

function newIndex(dim: number): Index {
  return new usearch.Index({
    dimensions: dim,
    metric: usearch.MetricKind.Cos,
    quantization: usearch.ScalarKind.F16,
    connectivity: 16,
    expansion_add: 128,
    expansion_search: 64,
    multi: false,
  });
}

/**
 * A kind's index for its new vectors: the old one brought up to date while the centre holds (only
 * the vectors that changed are removed and added), built anew about the new mean when it moved.
 */
function reindex(
  dim: number,
  before: Map<number, Float32Array>,
  after: Map<number, Float32Array>,
  old: { centre: Float32Array; index: Index } | undefined,
): { centre: Float32Array; index: Index } {
  const centre = centreFor(momentsOf(dim, after.values()), old?.centre);
  const rebuild = !old || centre !== old.centre;
  const index = rebuild ? newIndex(dim) : old.index;
  if (!rebuild) {
    const stale = [...before].filter(([k, v]) => after.get(k) !== v).map(([k]) => BigInt(k));
    if (stale.length > 0) index.remove(stale);
  }
  const fresh = [...after].filter(([k, v]) => rebuild || before.get(k) !== v);
  // One thread: a batch added by several threads at once sometimes leaves a vector that search
  // never reaches (a store of 49 random vectors missed one 1 time in 6).
  if (fresh.length > 0)
    index.add(
      BigUint64Array.from(fresh, ([k]) => BigInt(k)),
      fresh.map(([, v]) => centredUnit(v, centre)),
      1,
    );
  return { centre, index };
}

/** A file's bytes as numbers, copied only when the buffer's offset is not aligned for them. */
function floats<T extends Float32Array | Float64Array>(
  raw: Buffer,
  type: { new (b: ArrayBufferLike, offset: number, length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const b = raw.byteOffset % type.BYTES_PER_ELEMENT === 0 ? raw : new Uint8Array(raw);
  return new type(b.buffer, b.byteOffset, b.byteLength / type.BYTES_PER_ELEMENT);
}

const bytes = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function writeDurably(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The worker thread that writes a store (usearch-writer.ts), started at the first write; it keeps
 * the process alive only while a write is under way.
 */
class WriterThread {
  private thread: { worker: Worker; channel: Channel<WriteOp, null> } | undefined;
  /** Settles after the latest write: the thread does them in order. */
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly dataDir: string) {}

  run(w: WriteOp): Promise<void> {
    this.thread ??= this.start();
    const { worker, channel } = this.thread;
    if (channel.size() === 0) worker.ref();
    const done = channel.call(w).then(
      () => this.settled(),
      (e: unknown) => {
        this.settled();
        throw e;
      },
    );
    this.last = done.catch(() => undefined);
    return done;
  }

  async close(): Promise<void> {
    await this.last;
    const thread = this.thread;
    this.thread = undefined;
    await thread?.worker.terminate();
  }

  /** Lets the process exit while no write is under way. */
  private settled(): void {
    if (this.thread && this.thread.channel.size() === 0) this.thread.worker.unref();
  }

  private start(): { worker: Worker; channel: Channel<WriteOp, null> } {
    const worker = new Worker(new URL('./usearch-writer.js', import.meta.url), { workerData: { dataDir: this.dataDir } });
    const thread = { worker, channel: new Channel<WriteOp, null>(worker) };
    // A thread that dies fails what it had in hand; the next write starts another.
    const fail = (e: Error) => {
      if (this.thread !== thread) return;
      this.thread = undefined;
      thread.channel.failAll(new AppError('INTERNAL', `the vibe index writer failed: ${e.message}`, { cause: e }));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the vibe index writer stopped (exit code ${code})`)));
    return thread;
  }
}
