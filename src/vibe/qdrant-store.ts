// The vector store on a Qdrant server (QDRANT_URL, QDRANT_API_KEY): one collection (cosine),
// created on first use; each point has the key of vector-store.ts as its id and a payload with
// the track (catalog id and number), the kind, the chunk's start and the embedding space, which
// the collection's metadata records too so that a collection of another model is refused.
import { QdrantClient } from '@qdrant/js-client-rest';
import { AppError } from '../errors.js';
import { assertSpace, pointKey, type VectorHit, type VectorKind, type VectorPoint, type VectorSpace, type VectorStore } from './vector-store.js';

interface Payload {
  track_id: string;
  fp_id: number;
  kind: VectorKind;
  chunk_start_seconds: number;
  embedding_model: string;
}

const UPSERT_BATCH = 256;

export class QdrantStore implements VectorStore {
  readonly backend = 'qdrant' as const;
  private exists = false;

  private constructor(
    private readonly client: QdrantClient,
    private readonly collection: string,
    private readonly where: string,
  ) {}

  static open(opts: { url: string; apiKey: string | undefined; collection: string }): QdrantStore {
    const client = new QdrantClient({ url: opts.url, apiKey: opts.apiKey, checkCompatibility: false, timeout: 10_000 });
    return new QdrantStore(client, opts.collection, `Qdrant collection ${opts.collection} at ${opts.url}`);
  }

  async space(): Promise<VectorSpace | undefined> {
    if (!(await this.collectionExists())) return undefined;
    const info = await this.call(() => this.client.getCollection(this.collection));
    const vectors = info.config.params.vectors as { size?: number } | undefined;
    const meta = (info.config as { metadata?: Record<string, unknown> }).metadata;
    let id = typeof meta?.embedding_model === 'string' ? meta.embedding_model : undefined;
    if (!id) {
      // Collections made by other tools carry no metadata: the points say which model they hold.
      const { points } = await this.call(() => this.client.scroll(this.collection, { limit: 1, with_payload: ['embedding_model'] }));
      id = (points[0]?.payload as Partial<Payload> | undefined)?.embedding_model;
      if (!id) return undefined;
    }
    return { id, dim: vectors?.size ?? 0 };
  }

  async add(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    if (points.length === 0) return;
    await this.ensureCollection(space);
    for (let i = 0; i < points.length; i += UPSERT_BATCH) {
      const batch = points.slice(i, i + UPSERT_BATCH).map((p) => ({
        id: pointKey(p.fpId, p.kind, p.startSeconds),
        vector: Array.from(p.vector),
        payload: { track_id: p.trackId, fp_id: p.fpId, kind: p.kind, chunk_start_seconds: p.startSeconds, embedding_model: space.id } satisfies Payload,
      }));
      await this.call(() => this.client.upsert(this.collection, { wait: true, points: batch }));
    }
  }

  /** Not atomic on Qdrant: the collection is dropped, then filled again. */
  async replaceAll(space: VectorSpace, points: VectorPoint[]): Promise<void> {
    await this.clear();
    await this.ensureCollection(space);
    await this.add(space, points);
  }

  async removeTracks(fpIds: number[]): Promise<void> {
    if (fpIds.length === 0 || !(await this.collectionExists())) return;
    await this.call(() => this.client.delete(this.collection, { wait: true, filter: { must: [{ key: 'fp_id', match: { any: fpIds } }] } }));
  }

  async search(space: VectorSpace, vector: Float32Array, kind: VectorKind, k: number): Promise<VectorHit[]> {
    if (!(await this.collectionExists())) return [];
    assertSpace(await this.space(), space, this.where);
    const r = await this.call(() =>
      this.client.query(this.collection, {
        query: Array.from(vector),
        filter: { must: [{ key: 'kind', match: { value: kind } }] },
        limit: k,
        with_payload: ['fp_id', 'kind', 'chunk_start_seconds'],
      }),
    );
    return r.points.map((p) => {
      const pl = p.payload as unknown as Payload;
      return { fpId: pl.fp_id, kind: pl.kind, startSeconds: pl.chunk_start_seconds, cosine: p.score };
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

  private async collectionExists(): Promise<boolean> {
    if (!this.exists) this.exists = (await this.call(() => this.client.collectionExists(this.collection))).exists;
    return this.exists;
  }

  /** Creates the collection on first use (the seed's lazy initialisation); refuses another space. */
  private async ensureCollection(space: VectorSpace): Promise<void> {
    if (await this.collectionExists()) {
      assertSpace(await this.space(), space, this.where);
      return;
    }
    await this.call(() =>
      this.client.createCollection(this.collection, {
        vectors: { size: space.dim, distance: 'Cosine', datatype: 'float16' },
        metadata: { embedding_model: space.id },
      }),
    );
    for (const [field, schema] of [['fp_id', 'integer'], ['kind', 'keyword']] as const) {
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
