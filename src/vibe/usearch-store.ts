// The embedded vector store: two usearch HNSW indexes (track vectors, chunk vectors; f16, cosine)
// under DATA/vibe, memory-mapped read-only on start. The payload of a vector lives in its key
// (vector-store.ts); a sidecar lists the keys, since usearch cannot enumerate them and deletion
// and the orphan sweep need them.
//
// Crash safety: a write produces a new generation of all three files (tracks-G.usearch,
// chunks-G.usearch, keys-G.bin), syncs them, then replaces manifest.json (model, dimension,
// generation) by rename. The manifest is the commit point: a crash before it leaves the old
// generation in force and stray files that the next write removes. Writers of several processes
// (a CLI ingest beside a server on one PostgreSQL) take turns through a lock file; readers notice
// a newer generation by the manifest and map it.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import usearch, { type Index } from 'usearch';
import { AppError } from '../errors.js';
import { isAlive } from '../process.js';
import { assertSpace, parseKey, pointKey, type VectorHit, type VectorKind, type VectorPoint, type VectorSpace, type VectorStore } from './vector-store.js';

const KINDS: readonly VectorKind[] = ['track', 'chunk'];
const MANIFEST = 'manifest.json';
const LOCK = 'write.lock';
const LOCK_WAIT_MS = 60_000;

interface Manifest {
  generation: number;
  /** Absent when the store is empty. */
  space?: VectorSpace;
}

interface Loaded {
  generation: number;
  space: VectorSpace | undefined;
  indexes: Record<VectorKind, Index> | undefined;
  /** Keys per track. */
  keys: Map<number, number[]>;
  /** Whether the indexes are writable copies rather than read-only maps of the files. */
  inMemory: boolean;
}

export class UsearchStore implements VectorStore {
  readonly backend = 'usearch' as const;
  private state: Loaded;
  /** Writes of this process, one at a time. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly dir: string) {
    this.state = this.load(false);
  }

  static open(dataDir: string): UsearchStore {
    const dir = path.join(dataDir, 'vibe');
    mkdirSync(dir, { recursive: true });
    return new UsearchStore(dir);
  }

  async space(): Promise<VectorSpace | undefined> {
    return this.current().space;
  }

  add(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    if (points.length === 0) return Promise.resolve();
    return this.put(space, points, false);
  }

  replaceAll(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    return this.put(space, points, true);
  }

  private put(space: VectorSpace, points: VectorPoint[], replace: boolean): Promise<void> {
    for (const p of points) {
      if (p.vector.length !== space.dim) throw new AppError('INVALID_ARGUMENT', `a ${p.vector.length}-d vector for the ${space.dim}-d space ${space.id}`);
    }
    return this.write((current) => {
      const s = replace ? { space: undefined, indexes: undefined, keys: new Map<number, number[]>() } : current;
      assertSpace(s.space, space, this.dir);
      const indexes = s.indexes ?? newIndexes(space.dim);
      for (const kind of KINDS) {
        const of = points.filter((p) => p.kind === kind);
        if (of.length === 0) continue;
        const keys = of.map((p) => BigInt(pointKey(p.fpId, p.kind, p.startSeconds)));
        // A re-added track replaces its vectors instead of doubling them.
        indexes[kind].remove(keys.filter((k) => indexes[kind].contains(k)));
        // One thread: a batch added by several threads at once sometimes leaves a vector that
        // search never reaches (a store of 49 random vectors missed one 1 time in 6).
        indexes[kind].add(BigUint64Array.from(keys), of.map((p) => p.vector), 1);
      }
      const keys = new Map(s.keys);
      for (const p of points) {
        const k = pointKey(p.fpId, p.kind, p.startSeconds);
        const list = keys.get(p.fpId) ?? [];
        if (!list.includes(k)) keys.set(p.fpId, [...list, k]);
      }
      return { space, indexes, keys };
    });
  }

  removeTracks(fpIds: number[]): Promise<void> {
    if (!fpIds.some((id) => this.current().keys.has(id))) return this.writing;
    return this.write((s) => {
      const keys = new Map(s.keys);
      for (const id of fpIds) {
        for (const key of keys.get(id) ?? []) {
          const kind = parseKey(key).kind;
          s.indexes?.[kind].remove(BigInt(key));
        }
        keys.delete(id);
      }
      return { space: s.space, indexes: s.indexes, keys };
    });
  }

  async search(space: VectorSpace, vector: Float32Array, kind: VectorKind, k: number): Promise<VectorHit[]> {
    const s = this.current();
    assertSpace(s.space, space, this.dir);
    const index = s.indexes?.[kind];
    if (!index || index.size() === 0) return [];
    const m = index.search(vector, Math.min(k, index.size()), 1);
    const hits: VectorHit[] = [];
    for (let i = 0; i < m.keys.length; i++) {
      const p = parseKey(Number(m.keys[i]));
      hits.push({ ...p, cosine: 1 - m.distances[i]! });
    }
    return hits;
  }

  async trackNumbers(): Promise<number[]> {
    return [...this.current().keys.keys()];
  }

  async count(): Promise<Record<VectorKind, number>> {
    const idx = this.current().indexes;
    return { track: idx?.track.size() ?? 0, chunk: idx?.chunk.size() ?? 0 };
  }

  clear(): Promise<void> {
    return this.write(() => ({ space: undefined, indexes: undefined, keys: new Map() }));
  }

  async close(): Promise<void> {
    await this.writing;
  }

  /** The newest committed generation, mapped anew when another process has written one. */
  private current(): Loaded {
    const m = readManifest(this.dir);
    if ((m?.generation ?? 0) !== this.state.generation) this.state = this.load(false);
    return this.state;
  }

  /** Reads the committed generation: memory-mapped (read-only), or copied in memory to write. */
  private load(inMemory: boolean): Loaded {
    for (let attempt = 0; ; attempt++) {
      const m = readManifest(this.dir);
      if (!m?.space) return { generation: m?.generation ?? 0, space: undefined, indexes: undefined, keys: new Map(), inMemory: true };
      const space = m.space;
      try {
        const indexes = newIndexes(space.dim);
        for (const kind of KINDS) {
          const file = path.join(this.dir, `${kind}s-${m.generation}.usearch`);
          if (inMemory) indexes[kind].load(file);
          else indexes[kind].view(file);
        }
        const raw = readFileSync(path.join(this.dir, `keys-${m.generation}.bin`));
        const all = new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
        const keys = new Map<number, number[]>();
        for (const k of all) {
          const id = parseKey(k).fpId;
          const list = keys.get(id);
          if (list) list.push(k);
          else keys.set(id, [k]);
        }
        return { generation: m.generation, space, indexes, keys, inMemory };
      } catch (e) {
        // A writer of another process replaced this generation between our reads: read again.
        if (attempt < 3 && readManifest(this.dir)?.generation !== m.generation) continue;
        throw e;
      }
    }
  }

  private write(change: (s: Loaded) => Pick<Loaded, 'space' | 'indexes' | 'keys'>): Promise<void> {
    const run = async () => {
      const unlock = await this.lock();
      try {
        let s = this.current();
        if (!s.inMemory) s = this.load(true);
        const next = change(s);
        const generation = s.generation + 1;
        // An emptied store forgets its space: the next vectors may be of any model.
        const space = next.keys.size > 0 ? next.space : undefined;
        if (next.indexes && space) {
          for (const kind of KINDS) {
            const file = path.join(this.dir, `${kind}s-${generation}.usearch`);
            next.indexes[kind].save(file);
            syncFile(file);
          }
          const keys = Float64Array.from([...next.keys.values()].flat());
          writeDurably(path.join(this.dir, `keys-${generation}.bin`), new Uint8Array(keys.buffer));
        }
        writeDurably(path.join(this.dir, `${MANIFEST}.tmp`), JSON.stringify({ generation, ...(space ? { space } : {}) } satisfies Manifest));
        renameSync(path.join(this.dir, `${MANIFEST}.tmp`), path.join(this.dir, MANIFEST));
        this.state = space && next.indexes ? { generation, space, indexes: next.indexes, keys: next.keys, inMemory: true } : { generation, space: undefined, indexes: undefined, keys: new Map(), inMemory: true };
        syncFile(this.dir);
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
      const g = /^(?:tracks|chunks|keys)-(\d+)\.(?:usearch|bin)$/.exec(f);
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
      if (Date.now() > deadline) throw new AppError('INTERNAL', `the vibe index in ${this.dir} stayed locked by process ${holder} for ${LOCK_WAIT_MS / 1000} s`);
      await sleep(20);
    }
  }
}

function newIndexes(dim: number): Record<VectorKind, Index> {
  const make = () => new usearch.Index({ dimensions: dim, metric: usearch.MetricKind.Cos, quantization: usearch.ScalarKind.F16, connectivity: 16, expansion_add: 128, expansion_search: 64, multi: false });
  return { track: make(), chunk: make() };
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function writeDurably(file: string, data: string | Uint8Array): void {
  writeFileSync(file, data);
  syncFile(file);
}

function syncFile(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
