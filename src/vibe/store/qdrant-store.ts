// The vector store on a Qdrant server (QDRANT_URL, QDRANT_API_KEY): one collection, created on
// first use; each point has the key of vector-store.ts as its id, two vectors (`centred`: less
// its kind's centre, cosine, indexed; `raw`: as given, kept to re-centre from, not indexed) and a
// payload with the track (catalog id and number), the kind, the chunk's start and the embedding
// space. The collection's metadata records the space, so that a collection of another model is
// refused, and per kind the centre in use and the running sums it follows (centre.ts). Writes
// are not atomic on Qdrant, and two processes writing one collection would race on those sums.
import { QdrantClient } from '@qdrant/js-client-rest';
import { AppError } from '../../base/errors.js';
import { centreFor, centredUnit, emptyMoments, include, unit, type Moments } from './centre.js';
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

interface Payload {
  track_id: string;
  fp_id: number;
  kind: VectorKind;
  chunk_start_seconds: number;
  embedding_model: string;
}

/** The centring state of a kind as the collection's metadata holds it. */
interface SavedKind {
  centre: number[];
  count: number;
  sum: number[];
  squares: number;
}
type Centring = Record<VectorKind, { centre: Float32Array; moments: Moments }>;
type CollectionInfo = Awaited<ReturnType<QdrantClient['getCollection']>>;

const KINDS: readonly VectorKind[] = ['track', 'chunk'];
const UPSERT_BATCH = 256;

export class QdrantStore implements VectorStore {
  backend(): 'qdrant' {
    return 'qdrant';
  }
  private exists = false;

  private constructor(
    private readonly client: QdrantClient,
    private readonly collection: string,
    private readonly where: string,
  ) {}

  static open(opts: { url: string; apiKey: string | undefined; collection: string }): QdrantStore {
    const client = new QdrantClient({ url: opts.url, apiKey: opts.apiKey, timeout: 10_000 });
    return new QdrantStore(client, opts.collection, `Qdrant collection ${opts.collection} at ${opts.url}`);
  }

  async space(): Promise<VectorSpace | undefined> {
    if (!(await this.collectionExists())) return undefined;
    return this.spaceOf(await this.info());
  }

  private info(): Promise<CollectionInfo> {
    return this.call(() => this.client.getCollection(this.collection));
  }

  private async spaceOf(info: CollectionInfo): Promise<VectorSpace | undefined> {
    const vectors = info.config.params.vectors as { centred?: { size?: number }; size?: number } | undefined;
    const meta = (info.config as { metadata?: Record<string, unknown> }).metadata;
    let id = typeof meta?.embedding_model === 'string' ? meta.embedding_model : undefined;
    if (!id) {
      // Collections made by other tools carry no metadata: the points say which model they hold.
      const { points } = await this.call(() => this.client.scroll(this.collection, { limit: 1, with_payload: ['embedding_model'] }));
      id = (points[0]?.payload as Partial<Payload> | undefined)?.embedding_model;
      if (!id) return undefined;
    }
    return { id, dim: vectors?.centred?.size ?? vectors?.size ?? 0 };
  }

  async add(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    if (points.length === 0) return;
    await this.ensureCollection(space);
    const state = this.centring(await this.info(), space.dim);
    // A re-added point replaces its old vector in the sums.
    const ids = points.map((p) => pointKey(p.fpId, p.kind, p.startSeconds));
    for (const old of await this.call(() => this.client.retrieve(this.collection, { ids, with_vector: ['raw'], with_payload: false }))) {
      include(state[parseKey(Number(old.id)).kind].moments, rawOf(old.vector), -1);
    }
    for (const p of points) include(state[p.kind].moments, p.vector, 1);
    const centres = await this.follow(state);
    for (let i = 0; i < points.length; i += UPSERT_BATCH) {
      const batch = points.slice(i, i + UPSERT_BATCH).map((p) => ({
        id: pointKey(p.fpId, p.kind, p.startSeconds),
        vector: { centred: Array.from(centredUnit(p.vector, centres[p.kind])), raw: Array.from(p.vector) },
        payload: { track_id: p.trackId, fp_id: p.fpId, kind: p.kind, chunk_start_seconds: p.startSeconds, embedding_model: space.id } satisfies Payload,
      }));
      await this.call(() => this.client.upsert(this.collection, { wait: true, points: batch }));
    }
    await this.saveCentring(state, centres);
  }

  /** Not atomic on Qdrant: the collection is dropped, then filled again. */
  async replaceAll(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    await this.clear();
    await this.ensureCollection(space);
    await this.add(space, points);
  }

  async removeTracks(fpIds: number[]): Promise<void> {
    const space = await this.space();
    if (fpIds.length === 0 || !space) return;
    const state = this.centring(await this.info(), space.dim);
    const filter = { must: [{ key: 'fp_id', match: { any: fpIds } }] };
    await this.scroll(filter, ['raw'], (p) => include(state[p.kind].moments, rawOf(p.vector), -1));
    await this.call(() => this.client.delete(this.collection, { wait: true, filter }));
    await this.saveCentring(state, await this.follow(state));
  }

  async search(space: VectorSpace, query: Query, kind: VectorKind, k: number): Promise<Found> {
    if (!(await this.collectionExists())) return { query: unit(query.vector), hits: [] };
    // One read of the collection gives both its space and its centres.
    const info = await this.info();
    assertSpace(await this.spaceOf(info), space, this.where);
    const { centre } = this.centring(info, space.dim)[kind];
    const q = query.centred ? unit(query.vector) : centredUnit(query.vector, centre);
    const r = await this.call(() =>
      this.client.query(this.collection, {
        query: Array.from(q),
        using: 'centred',
        filter: { must: [{ key: 'kind', match: { value: kind } }] },
        limit: k,
        with_payload: ['fp_id', 'kind', 'chunk_start_seconds'],
      }),
    );
    const hits = r.points.map((p) => {
      const pl = p.payload as unknown as Payload;
      return { fpId: pl.fp_id, kind: pl.kind, startSeconds: pl.chunk_start_seconds, cosine: p.score };
    });
    return { query: q, hits };
  }

  async compared(space: VectorSpace, hits: VectorHit[]): Promise<Float32Array[]> {
    assertSpace(await this.space(), space, this.where);
    const ids = hits.map((h) => pointKey(h.fpId, h.kind, h.startSeconds));
    const points = await this.call(() => this.client.retrieve(this.collection, { ids, with_vector: ['centred'], with_payload: false }));
    const byId = new Map(points.map((p) => [Number(p.id), (p.vector as Record<string, number[]> | undefined)?.centred]));
    return ids.map((id) => {
      const v = byId.get(id);
      if (!v) throw new AppError('NOT_FOUND', `no vector ${id} in ${this.where}`);
      return Float32Array.from(v);
    });
  }

  async trackNumbers(): Promise<number[]> {
    if (!(await this.collectionExists())) return [];
    const ids = new Set<number>();
    let offset: string | number | undefined | null;
    do {
      const page = await this.call(() => this.client.scroll(this.collection, { limit: 1000, offset: offset ?? undefined, with_payload: ['fp_id'] }));
      for (const p of page.points) ids.add((p.payload as unknown as Payload).fp_id);
      offset = page.next_page_offset as string | number | null | undefined;
    } while (offset !== null && offset !== undefined);
    return [...ids];
  }

  async count(): Promise<Record<VectorKind, number>> {
    if (!(await this.collectionExists())) return { track: 0, chunk: 0 };
    const of = async (kind: VectorKind) =>
      (await this.call(() => this.client.count(this.collection, { exact: true, filter: { must: [{ key: 'kind', match: { value: kind } }] } }))).count;
    return { track: await of('track'), chunk: await of('chunk') };
  }

  async clear(): Promise<void> {
    if (await this.collectionExists()) await this.call(() => this.client.deleteCollection(this.collection));
    this.exists = false;
  }

  async close(): Promise<void> {}

  /** The centring state in the collection's metadata (zero sums for a new collection). */
  private centring(info: CollectionInfo, dim: number): Centring {
    const saved = (info.config as { metadata?: { centring?: Record<VectorKind, SavedKind> } }).metadata?.centring;
    const read = (s: SavedKind | undefined) =>
      s
        ? { centre: Float32Array.from(s.centre), moments: { count: s.count, sum: Float64Array.from(s.sum), squares: s.squares } }
        : { centre: new Float32Array(dim), moments: emptyMoments(dim) };
    return { track: read(saved?.track), chunk: read(saved?.chunk) };
  }

  /**
   * The centre of each kind for its new sums; a kind whose centre moved has every stored vector
   * re-centred (the new points of a write are upserted after, with the new centre).
   */
  private async follow(state: Centring): Promise<Record<VectorKind, Float32Array>> {
    const out = {} as Record<VectorKind, Float32Array>;
    for (const kind of KINDS) {
      const current = state[kind].centre;
      const centre = centreFor(state[kind].moments, current);
      out[kind] = centre;
      if (centre === current) continue;
      const updates: { id: number; vector: { centred: number[] } }[] = [];
      await this.scroll({ must: [{ key: 'kind', match: { value: kind } }] }, ['raw'], (p) =>
        updates.push({ id: p.id, vector: { centred: Array.from(centredUnit(rawOf(p.vector), centre)) } }),
      );
      for (let i = 0; i < updates.length; i += UPSERT_BATCH) {
        const points = updates.slice(i, i + UPSERT_BATCH);
        await this.call(() => this.client.updateVectors(this.collection, { wait: true, points }));
      }
    }
    return out;
  }

  private async saveCentring(state: Centring, centres: Record<VectorKind, Float32Array>): Promise<void> {
    const saved = (kind: VectorKind): SavedKind => {
      const m = state[kind].moments;
      return { centre: Array.from(centres[kind]), count: m.count, sum: Array.from(m.sum), squares: m.squares };
    };
    await this.call(() => this.client.updateCollection(this.collection, { metadata: { centring: { track: saved('track'), chunk: saved('chunk') } } }));
  }

  /** Every point matching a filter, with the named vectors asked for. */
  private async scroll(
    filter: Record<string, unknown>,
    vectors: string[],
    each: (p: { id: number; kind: VectorKind; vector: unknown }) => void,
  ): Promise<void> {
    let offset: string | number | undefined | null;
    do {
      const page = await this.call(() =>
        this.client.scroll(this.collection, { filter, limit: 256, offset: offset ?? undefined, with_payload: ['kind'], with_vector: vectors }),
      );
      for (const p of page.points) each({ id: Number(p.id), kind: (p.payload as unknown as Payload).kind, vector: p.vector });
      offset = page.next_page_offset as string | number | null | undefined;
    } while (offset !== null && offset !== undefined);
  }

  private async collectionExists(): Promise<boolean> {
    if (!this.exists) this.exists = (await this.call(() => this.client.collectionExists(this.collection))).exists;
    return this.exists;
  }

  /** Creates the collection on first use, so that a server starts before Qdrant has one; refuses another space. */
  private async ensureCollection(space: VectorSpace): Promise<void> {
    if (await this.collectionExists()) {
      assertSpace(await this.space(), space, this.where);
      return;
    }
    await this.call(() =>
      this.client.createCollection(this.collection, {
        vectors: {
          centred: { size: space.dim, distance: 'Cosine', datatype: 'float16' },
          // Read back only to re-centre: no index of its own.
          raw: { size: space.dim, distance: 'Dot', hnsw_config: { m: 0 } },
        },
        metadata: { embedding_model: space.id },
      }),
    );
    for (const [field, schema] of [
      ['fp_id', 'integer'],
      ['kind', 'keyword'],
    ] as const) {
      await this.call(() => this.client.createPayloadIndex(this.collection, { wait: true, field_name: field, field_schema: schema }));
    }
    this.exists = true;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof AppError) throw e;
      const detail = (e as { data?: { status?: { error?: string } } }).data?.status?.error ?? (e as Error).message;
      throw new AppError('VECTOR_STORE_UNAVAILABLE', `${this.where}: ${detail}`, { cause: e });
    }
  }
}

function rawOf(vector: unknown): Float32Array {
  return Float32Array.from((vector as Record<string, number[]> | undefined)?.raw ?? []);
}
