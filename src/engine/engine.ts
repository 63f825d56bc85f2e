// The engine: catalog (PostgreSQL), fingerprint index (LMDB) and raw files of one data dir, and
// the operations that keep the three in agreement. The CLI, the REST server and live sessions
// all work through it.
//
// Agreement after a crash comes from the order of writes. Ingest: catalog row 'pending' ->
// postings -> vibe vectors -> raw file moved into place -> row 'indexed'. Delete: row 'deleting'
// -> postings removed -> vectors removed -> raw file removed -> row deleted. Readers see
// 'indexed' rows only, and on open the engine rolls back the pending rows of dead processes,
// finishes interrupted deletions and drops postings, vectors and raw files that no row refers to.
import { randomUUID } from 'node:crypto';
import type { Config } from '../base/config.js';
import { Catalog, type NewTrack, type Track } from '../catalog/catalog.js';
import { openDatabase, type Database } from '../catalog/database.js';
import { migrate } from '../catalog/migrations.js';
import { AppError } from '../base/errors.js';
import { log } from '../base/log.js';
import { ownerGone, processOwner } from '../base/process.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import { FingerprintIndex, type IndexStats } from '../exact/fingerprint-index.js';
import { MAX_QUERY_SECONDS, matchClip } from '../exact/clip-match.js';
import type { Fingerprint } from '../exact/fingerprint.js';
import { DEFAULT_MATCHER, type MatcherConfig, type Match } from '../exact/matcher.js';
import { RawStore } from '../catalog/raw-store.js';
import { DataStore } from '../exact/lmdb.js';
import { openVibeLane, type TrackEmbeddings, type VibeLane } from '../vibe/lane.js';
import { openVectorStore, type VectorStore } from '../vibe/store/vector-store.js';

/** A decoded, fingerprinted file waiting to be committed. */
export interface PreparedTrack {
  meta: NewTrack;
  fp: Fingerprint;
  staged: string;
  /** The track's embeddings, when the vibe lane is on. */
  vibe?: TrackEmbeddings;
}

export interface TrackMatch extends Omit<Match, 'fpId'> {
  track: Track;
}

export interface TrackVibeMatch {
  track: Track;
  similarity: number;
  /** The model that compared them. */
  embeddingModel: string;
}

export interface SameRecording {
  track: Track;
  /** Mean confidence of the agreeing excerpts. */
  confidence: number;
}

export class Engine {
  readonly raw: RawStore;
  readonly catalog: Catalog;

  private constructor(
    readonly config: Config,
    private readonly db: Database,
    readonly store: DataStore,
    readonly index: FingerprintIndex,
    /** The vibe lane's vectors: always open, so that deletion and settling reach them. */
    readonly vectors: VectorStore,
    /** The vibe lane when its model is loaded (opened with `vibe: true`). */
    readonly vibe: VibeLane | undefined,
    /** Why there is no vibe lane, when there is none. */
    readonly vibeUnavailable: string,
    readonly matcher: MatcherConfig,
  ) {
    this.raw = new RawStore(config.dataDir);
    this.catalog = new Catalog(db.sql);
  }

  /**
   * Opens the stores of a data dir and settles what crashed processes left. With `vibe`, loads
   * the configured embedding model too (a pool of workers: for the server, ingest and rebuild);
   * a store holding vectors of another model is refused then, unless `vibe: 'replace'` (a
   * re-embedding that replaces them).
   */
  static async open(config: Config, matcher: MatcherConfig = DEFAULT_MATCHER, opts: { vibe?: boolean | 'replace' } = {}): Promise<Engine> {
    const db = await openDatabase(config);
    let store: DataStore | undefined;
    let vectors: VectorStore | undefined;
    let vibe: VibeLane | undefined;
    try {
      await migrate(db.sql);
      store = DataStore.open(config.dataDir);
      vectors = await openVectorStore(config);
      const opened = opts.vibe ? await openVibeLane(config, vectors, opts.vibe === 'replace') : { lane: undefined, reason: 'the vibe model is not loaded in this process' };
      vibe = opened.lane;
      const engine = new Engine(config, db, store, new FingerprintIndex(store), vectors, vibe, opened.lane ? '' : opened.reason, matcher);
      await engine.settle();
      return engine;
    } catch (e) {
      await vibe?.close();
      await vectors?.close();
      await store?.close();
      await db.close();
      throw e;
    }
  }

  get databaseKind(): Database['kind'] {
    return this.db.kind;
  }

  async close(): Promise<void> {
    await this.vibe?.close();
    await this.vectors.close();
    await this.store.close();
    await this.db.close();
  }

  /** A cheap query against each store, for health checks. */
  async ping(): Promise<void> {
    await this.db.sql`SELECT 1`;
  }

  /**
   * Commits prepared tracks and moves their files in. A file whose hash another process has just
   * committed gives null in its place (its staged copy is dropped).
   */
  async commit(items: PreparedTrack[]): Promise<(Track | null)[]> {
    if (items.length === 0) return [];
    const lane = this.vibe;
    const rows = await this.catalog.insertPending(
      items.map((it) => ({
        ...it.meta,
        id: randomUUID(),
        embedding_model: lane && it.vibe ? lane.space.id : null,
        embedding_dim: lane && it.vibe ? lane.space.dim : null,
        vibe_tags: lane && it.vibe ? lane.topTags(it.vibe.track) : [],
      })),
      processOwner,
    );
    const created = rows.flatMap((track, i) => (track ? [{ track, item: items[i]! }] : []));
    try {
      this.store.transaction(() => this.index.add(created.map(({ track, item }) => ({ track: track.fpId, fp: item.fp }))));
      if (lane) await this.vectors.add(lane.space, created.flatMap(({ track, item }) => (item.vibe ? lane.points(track, item.vibe) : [])));
      for (const { track, item } of created) await this.raw.publish(item.staged, track.raw_path);
      await this.catalog.markIndexed(created.map(({ track }) => track.id));
    } catch (e) {
      await this.undo(created.map(({ track }) => track));
      for (const { item } of created) await this.raw.discard(item.staged);
      throw e;
    }
    for (let i = 0; i < items.length; i++) if (!rows[i]) await this.raw.discard(items[i]!.staged);
    return rows;
  }

  async removeTrack(id: string): Promise<Track> {
    const track = await this.catalog.beginDelete(id);
    if (!track) throw new AppError('TRACK_NOT_FOUND', `no track with id ${id}`);
    await this.undo([track]);
    return track;
  }

  /**
   * The catalog tracks that sound most like a clip of 16 kHz mono PCM, best first (the vibe
   * lane); the clip is embedded in the worker pool. Throws LANE_UNAVAILABLE without a model.
   */
  async vibeSearch(pcm: Float32Array, maxResults: number): Promise<TrackVibeMatch[]> {
    if (!this.vibe) throw new AppError('LANE_UNAVAILABLE', `the vibe lane is not available: ${this.vibeUnavailable}`);
    const e = await this.vibe.embedder.embedClip(pcm.subarray(0, MAX_QUERY_SECONDS * SAMPLE_RATE));
    return this.resolveVibe(await this.vibe.nearest(e, maxResults));
  }

  /** Attaches catalog rows to vibe hits; a hit whose track is not visible is dropped. */
  async resolveVibe(hits: { fpId: number; similarity: number }[]): Promise<TrackVibeMatch[]> {
    const tracks = await this.catalog.byFpIds(hits.map((h) => h.fpId));
    const embeddingModel = this.vibe?.embedder.model.id ?? '';
    return hits.flatMap((h) => {
      const track = tracks.get(h.fpId);
      return track ? [{ track, similarity: h.similarity, embeddingModel }] : [];
    });
  }

  /** Matches of a clip of 16 kHz mono PCM, best first: at least 3 s; only its first 30 s are used. */
  async identify(pcm: Float32Array, maxResults = 5): Promise<TrackMatch[]> {
    return this.resolve(matchClip(this.index, this.matcher, pcm, maxResults));
  }

  /**
   * The catalog track this audio is another copy of (re-encoded, re-tagged), if any: excerpts
   * from its start, middle and end must each match one track at their own place in it, and the
   * durations must agree. Distinct tracks that share a loop fail the placement or the duration.
   */
  async findSameRecording(pcm: Float32Array): Promise<SameRecording | undefined> {
    const seconds = pcm.length / SAMPLE_RATE;
    const len = Math.min(10, seconds);
    const starts = seconds < 20 ? [0] : [0.1, 0.5, 0.9].map((f) => f * (seconds - len));
    // Track -> confidence at each excerpt so far. Most files are new: their first excerpt
    // matches nothing and the other two are not looked up.
    let agree = new Map<number, number[]>();
    for (const [k, start] of starts.entries()) {
      const at = Math.round(start * SAMPLE_RATE);
      const next = new Map<number, number[]>();
      for (const m of matchClip(this.index, this.matcher, pcm.subarray(at, at + Math.round(len * SAMPLE_RATE)), 3, true)) {
        const before = k === 0 ? [] : agree.get(m.fpId);
        if (before && !next.has(m.fpId) && Math.abs(m.offsetSeconds - start) <= 1) next.set(m.fpId, [...before, m.confidence]);
      }
      agree = next;
      if (agree.size === 0) return undefined;
    }
    const mean = (c: number[]) => c.reduce((a, b) => a + b, 0) / c.length;
    const [best] = [...agree.entries()].sort((a, b) => mean(b[1]) - mean(a[1]));
    const track = (await this.catalog.byFpIds([best![0]])).get(best![0]);
    if (!track || Math.abs(track.duration_seconds - seconds) > Math.max(1.5, 0.02 * seconds)) return undefined;
    return { track, confidence: mean(best![1]) };
  }

  /** Attaches catalog rows to matches; a match whose track is not visible (deleted) is dropped. */
  async resolve(matches: Match[]): Promise<TrackMatch[]> {
    const tracks = await this.catalog.byFpIds(matches.map((m) => m.fpId));
    return matches.flatMap(({ fpId, ...m }) => {
      const track = tracks.get(fpId);
      return track ? [{ ...m, track }] : [];
    });
  }

  stats(): IndexStats {
    return this.index.stats();
  }

  /** Removes tracks' postings, vectors, raw files and rows, in that order. */
  private async undo(tracks: { id: string; fpId: number; raw_path: string }[]): Promise<void> {
    if (tracks.length === 0) return;
    this.store.transaction(() => {
      for (const t of tracks) this.index.remove(t.fpId);
    });
    await this.vectors.removeTracks(tracks.map((t) => t.fpId));
    for (const t of tracks) await this.raw.remove(t.raw_path);
    await this.catalog.deleteRows(tracks.map((t) => t.id));
  }

  /**
   * Settles what crashed processes left behind (see the top of this file). The write order leaves
   * orphan postings or files only beside such evidence (rows not settled, staged copies of dead
   * processes), so the full sweep of the stores runs only then, not on every start.
   */
  private async settle(): Promise<void> {
    const unsettled = (await this.catalog.unsettled()).filter((r) => r.status === 'deleting' || !r.owner || ownerGone(r.owner));
    await this.undo(unsettled);
    const staged = await this.raw.removeStaleStaging();
    if (unsettled.length === 0 && staged === 0) return;
    // Stores are listed before the catalog's references: whatever they held then had its row
    // already, so a concurrent ingest's fresh postings and files are never taken for orphans.
    const indexed = this.index.trackNumbers();
    const embedded = await this.vectors.trackNumbers();
    const files = await this.raw.published();
    const refs = await this.catalog.references();
    const orphanTracks = indexed.filter((n) => !refs.fpIds.has(n));
    const orphanVectors = embedded.filter((n) => !refs.fpIds.has(n));
    const orphanFiles = files.filter((f) => !refs.rawPaths.has(f));
    this.store.transaction(() => {
      for (const n of orphanTracks) this.index.remove(n);
    });
    await this.vectors.removeTracks(orphanVectors);
    for (const f of orphanFiles) await this.raw.remove(f);
    log.info('settled an interrupted ingest or deletion', { rows: unsettled.length, postings: orphanTracks.length, vectors: orphanVectors.length, files: orphanFiles.length, staged });
  }
}
