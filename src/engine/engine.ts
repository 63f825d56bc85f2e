// The engine: catalog (PostgreSQL), fingerprint index (LMDB), raw files and vectors of one data
// dir, both lanes and the matching threads, and the operations that keep the stores in agreement.
// The CLI, the REST server and live sessions all ask it through its methods; its parts stay here.
//
// Agreement after a crash comes from the order of writes. Ingest: catalog row 'pending' ->
// postings -> vibe vectors -> raw file moved into place -> row 'indexed'. Delete: row 'deleting'
// -> postings removed -> vectors removed -> raw file removed -> row deleted. Readers see
// 'indexed' rows only, and on open the engine rolls back the pending rows of dead processes,
// finishes interrupted deletions and drops postings, vectors and raw files that no row refers to.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../base/config.js';
import { Catalog, type NewTrack, type Track, type TrackMetadata } from '../catalog/catalog.js';
import { openDatabase, type Database } from '../catalog/database.js';
import { migrate } from '../catalog/migrations.js';
import { AppError, isAppError } from '../base/errors.js';
import { Mutex } from '../base/lock.js';
import { checkWritable } from '../base/storage.js';
import { log } from '../base/log.js';
import { pool } from '../base/pool.js';
import { ownerGone, processOwner } from '../base/process.js';
import { decodeFile, SAMPLE_RATE } from '../audio/decode.js';
import { FingerprintIndex, type IndexStats } from '../exact/fingerprint-index.js';
import { scanIndex, type ScanResult } from '../exact/index-scan.js';
import { MAX_QUERY_SECONDS, matchClip } from '../exact/clip-match.js';
import type { Fingerprint } from '../exact/fingerprint.js';
import type { LiveMatchEvents, LiveMatchOptions } from '../exact/live-match.js';
import { MatchThreads, type LiveMatchHandle, type MatchThreadStats } from '../exact/match-threads.js';
import { DEFAULT_MATCHER, type MatcherConfig, type Match } from '../exact/matcher.js';
import { RawStore } from '../catalog/raw-store.js';
import { DataStore } from '../exact/lmdb.js';
import { openVibeLane, type TrackEmbeddings, type VibeLane } from '../vibe/lane.js';
import { openVectorStore, type VectorStore } from '../vibe/store/vector-store.js';
import { ingestFiles, type IngestInput, type IngestProgress, type IngestSummary } from './ingest.js';
import { searchClip, type SearchOptions, type SearchOutcome } from './search.js';

/** A decoded, fingerprinted file waiting to be committed. */
export interface PreparedTrack {
  meta: NewTrack;
  fp: Fingerprint;
  /** Its original, staged in the raw store; a track committed without one cannot be rebuilt. */
  staged?: string;
  /** The track's embeddings, when the vibe lane is on. */
  vibe?: TrackEmbeddings;
}

/** Whether the vibe lane runs in this process, and why not. */
export type VibeStatus = { on: true; model: string; store: ReturnType<VectorStore['backend']> } | { on: false; reason: string };

/** What each store holds, for checks that they agree. */
export interface Inventory {
  /** Visible catalog rows. */
  tracks: Track[];
  /** Rows pending or being deleted. */
  unsettled: number;
  /** Track numbers with postings in the index. */
  indexed: number[];
  /** Track numbers with vectors. */
  embedded: number[];
  /** Originals in place, relative to the data dir. */
  originals: string[];
  /** Staged originals not yet in place. */
  staged: string[];
}

export interface EngineOptions {
  matcher?: MatcherConfig;
  /** Load the embedding model (server, ingest, rebuild); 'replace' accepts vectors of another model, to replace them. */
  vibe?: boolean | 'replace';
  /** Start this many matching threads, for clip search and live sessions (the server). */
  matchThreads?: number;
  /** Read the whole index once in the background (index-scan.ts); checkIndex fails from then on if that failed (the server). */
  scanIndex?: boolean;
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
  private readonly raw: RawStore;
  private readonly catalog: Catalog;
  private readonly ingestGate = new Mutex();
  /** The full read of the index: running, passed, or the reason it failed. */
  private scan: { state: 'running' } | { state: 'done'; result: ScanResult } | undefined;

  private constructor(
    private readonly config: Config,
    private readonly db: Database,
    private readonly store: DataStore,
    private readonly index: FingerprintIndex,
    /** The vibe lane's vectors: always open, so that deletion and settling reach them. */
    private readonly vectors: VectorStore,
    /** The vibe lane when its model is loaded. */
    private readonly vibe: VibeLane | undefined,
    /** Why there is no vibe lane, when there is none. */
    private readonly vibeUnavailable: string,
    private readonly matcher: MatcherConfig,
    private threads?: MatchThreads,
  ) {
    this.raw = new RawStore(config.dataDir);
    this.catalog = new Catalog(db.sql);
  }

  /**
   * Opens the stores of a data dir and settles what crashed processes left. A store holding
   * vectors of another model than the configured one is refused, unless `vibe: 'replace'`.
   */
  static async open(config: Config, opts: EngineOptions = {}): Promise<Engine> {
    await checkWritable(config.dataDir);
    const db = await openDatabase(config);
    let store: DataStore | undefined;
    let vectors: VectorStore | undefined;
    let vibe: VibeLane | undefined;
    try {
      await migrate(db.sql);
      let index: FingerprintIndex;
      try {
        // Read apart before this process touches it: a damaged page can crash the reader.
        const sample = DataStore.exists(config.dataDir) ? await scanIndex(config.dataDir, 'sample') : undefined;
        if (sample && !sample.ok) throw indexCorrupt(config.dataDir, 'cannot be read', sample.reason);
        store = DataStore.open(config.dataDir);
        index = new FingerprintIndex(store);
      } catch (e) {
        throw isAppError(e) ? e : indexCorrupt(config.dataDir, 'cannot be read', e);
      }
      vectors = await openVectorStore(config);
      const opened = opts.vibe
        ? await openVibeLane(config, vectors, opts.vibe === 'replace')
        : { lane: undefined, reason: 'the vibe model is not loaded in this process' };
      vibe = opened.lane;
      const matcher = opts.matcher ?? DEFAULT_MATCHER;
      const engine = new Engine(config, db, store, index, vectors, vibe, opened.lane ? '' : opened.reason, matcher);
      await engine.settle();
      await engine.checkIndex(true);
      if (opts.scanIndex) engine.startScan();
      // The threads open their own readers of the index, after the settling wrote it.
      if (opts.matchThreads) engine.threads = new MatchThreads({ dataDir: config.dataDir, matcher, ffmpegPath: config.ffmpegPath }, opts.matchThreads);
      return engine;
    } catch (e) {
      await vibe?.close();
      await vectors?.close();
      await store?.close();
      await db.close();
      throw e;
    }
  }

  databaseKind(): Database['kind'] {
    return this.db.kind;
  }

  async close(): Promise<void> {
    await this.threads?.close();
    await this.vibe?.close();
    await this.vectors.close();
    await this.store.close();
    await this.db.close();
  }

  /** A cheap query against the catalog, for health checks. */
  async ping(): Promise<void> {
    await this.db.sql`SELECT 1`;
  }

  // --- lanes -------------------------------------------------------------------------------------

  /** The one place that says whether the vibe lane runs. */
  vibeStatus(): VibeStatus {
    return this.vibe ? { on: true, model: this.vibe.space().id, store: this.vectors.backend() } : { on: false, reason: this.vibeUnavailable };
  }

  /** Throws LANE_UNAVAILABLE, naming why, unless the vibe lane runs. */
  requireVibe(): void {
    this.lane();
  }

  /** Vectors in the store, for the health report. */
  async vectorCount(): Promise<{ track: number; chunk: number }> {
    return this.vectors.count();
  }

  stats(): IndexStats {
    return this.index.stats();
  }

  /**
   * Whether the fingerprint index can be read (FingerprintIndex.check) and agrees with the
   * catalog: every visible track has its fingerprints, and with `exact` (no ingest or deletion
   * running, as at open) the index holds no track the catalog has no row for. Throws
   * INDEX_CORRUPT naming what is wrong; returns the visible tracks.
   */
  async checkIndex(exact = false): Promise<number> {
    if (this.scan?.state === 'done' && !this.scan.result.ok) throw indexCorrupt(this.config.dataDir, 'cannot be read');
    let indexed: Set<number>;
    try {
      indexed = new Set(this.index.check());
    } catch (e) {
      throw indexCorrupt(this.config.dataDir, 'cannot be read', e);
    }
    const visible = await this.catalog.indexedFpIds();
    const missing = visible.filter((n) => !indexed.has(n)).length;
    if (missing) throw indexCorrupt(this.config.dataDir, `lacks the fingerprints of ${missing} of the catalog's ${visible.length} tracks`);
    if (exact) {
      const refs = (await this.catalog.references()).fpIds;
      const extra = [...indexed].filter((n) => !refs.has(n)).length;
      if (extra) throw indexCorrupt(this.config.dataDir, `holds ${extra} tracks that the catalog has no row for`);
    }
    return visible.length;
  }

  private startScan(): void {
    this.scan = { state: 'running' };
    scanIndex(this.config.dataDir, 'full').then((result) => {
      this.scan = { state: 'done', result };
      if (result.ok)
        log.info('read the whole fingerprint index', { tracks: result.tracks, entries: result.entries, seconds: Math.round(result.seconds * 100) / 100 });
      else indexCorrupt(this.config.dataDir, 'cannot be read', result.reason);
    });
  }

  // --- the catalog -------------------------------------------------------------------------------

  listTracks(q?: Parameters<Catalog['list']>[0]): ReturnType<Catalog['list']> {
    return this.catalog.list(q);
  }

  getTrack(id: string): Promise<Track | undefined> {
    return this.catalog.get(id);
  }

  async updateTrack(id: string, fields: TrackMetadata): Promise<Track> {
    const track = await this.catalog.updateMetadata(id, fields);
    if (!track) throw new AppError('TRACK_NOT_FOUND', `no track with id ${id}`);
    return track;
  }

  duplicateReports(): ReturnType<Catalog['duplicateReports']> {
    return this.catalog.duplicateReports();
  }

  /** The one resolver of track numbers: the visible rows of those that have one. */
  tracksByFpId(fpIds: number[]): Promise<Map<number, Track>> {
    return this.catalog.byFpIds(fpIds);
  }

  /** Where a track's original is kept. */
  originalPath(track: Pick<Track, 'raw_path'>): string {
    return this.raw.absolute(track.raw_path);
  }

  /** What every store holds, so that checks (the crash tests) can compare them. */
  async inventory(): Promise<Inventory> {
    const [{ tracks }, unsettled, embedded, originals, staged] = await Promise.all([
      this.catalog.list(),
      this.catalog.unsettled(),
      this.vectors.trackNumbers(),
      this.raw.published(),
      this.raw.staged(),
    ]);
    return { tracks, unsettled: unsettled.length, indexed: this.index.trackNumbers(), embedded, originals, staged };
  }

  // --- ingest and deletion -------------------------------------------------------------------------

  /** Ingests files (see ingest.ts); a file that fails is reported in the summary and skipped. */
  ingest(inputs: IngestInput[], onProgress?: (p: IngestProgress) => void): Promise<IngestSummary> {
    const lane = this.vibe;
    return ingestFiles(
      {
        config: this.config,
        catalog: this.catalog,
        raw: this.raw,
        embed: lane ? (pcm) => lane.embedTrack(pcm) : undefined,
        findSameRecording: (pcm) => this.findSameRecording(pcm),
        commit: (items) => this.commit(items),
        gate: this.ingestGate,
      },
      inputs,
      onProgress,
    );
  }

  /**
   * Commits prepared tracks and moves their files in. A file whose hash another process has just
   * committed gives null in its place (its staged copy is dropped).
   */
  async commit(items: PreparedTrack[]): Promise<(Track | null)[]> {
    if (items.length === 0) return [];
    const lane = this.vibe;
    const space = lane?.space();
    const rows = await this.catalog.insertPending(
      items.map((it) => ({
        ...it.meta,
        id: randomUUID(),
        embedding_model: space && it.vibe ? space.id : null,
        embedding_dim: space && it.vibe ? space.dim : null,
        vibe_tags: lane && it.vibe ? lane.topTags(it.vibe.track) : [],
      })),
      processOwner,
    );
    const created = rows.flatMap((track, i) => (track ? [{ track, item: items[i]! }] : []));
    try {
      this.store.transaction(() => this.index.add(created.map(({ track, item }) => ({ track: track.fpId, fp: item.fp }))));
      if (lane && space)
        await this.vectors.add(
          space,
          created.flatMap(({ track, item }) => (item.vibe ? lane.points(track, item.vibe) : [])),
        );
      for (const { track, item } of created) if (item.staged) await this.raw.publish(item.staged, track.raw_path);
      await this.catalog.markIndexed(created.map(({ track }) => track.id));
    } catch (e) {
      await this.undo(created.map(({ track }) => track));
      for (const { item } of created) if (item.staged) await this.raw.discard(item.staged);
      throw e;
    }
    for (let i = 0; i < items.length; i++) {
      const staged = items[i]!.staged;
      if (!rows[i] && staged) await this.raw.discard(staged);
    }
    return rows;
  }

  async removeTrack(id: string): Promise<Track> {
    const track = await this.catalog.beginDelete(id);
    if (!track) throw new AppError('TRACK_NOT_FOUND', `no track with id ${id}`);
    await this.undo([track]);
    return track;
  }

  /**
   * Embeds every visible track again from its original with the configured model and replaces
   * all vectors at once (`rebuild-index --vibe`; the engine is opened with `vibe: 'replace'`).
   */
  async reembed(onProgress?: (done: number, total: number) => void): Promise<{ tracks: number; audioSeconds: number; vectors: number; model: string }> {
    const lane = this.lane();
    const space = lane.space();
    const { tracks } = await this.catalog.list();
    const points: ReturnType<VibeLane['points']> = [];
    const rows: Parameters<Catalog['setVibe']>[0] = [];
    let audioSeconds = 0;
    let done = 0;
    await pool(tracks, this.config.concurrency, async (t) => {
      const pcm = await decodeFile(this.originalPath(t), { ffmpegPath: this.config.ffmpegPath, label: t.file_name });
      audioSeconds += pcm.length / SAMPLE_RATE;
      const e = await lane.embedTrack(pcm);
      points.push(...lane.points(t, e));
      rows.push({ id: t.id, embedding_model: space.id, embedding_dim: space.dim, vibe_tags: lane.topTags(e.track) });
      onProgress?.(++done, tracks.length);
    });
    await this.vectors.replaceAll(space, points);
    await this.catalog.setVibe(rows);
    return { tracks: tracks.length, audioSeconds, vectors: points.length, model: space.id };
  }

  // --- identification ----------------------------------------------------------------------------

  /** Matches of a clip of 16 kHz mono PCM, best first, in this thread: at least 3 s; only its first 30 s are used. */
  async identify(pcm: Float32Array, maxResults = 5): Promise<TrackMatch[]> {
    return this.resolve(matchClip(this.index, this.matcher, pcm, maxResults));
  }

  /** A search of an uploaded clip saved at `file` (see search.ts): read, decoded and matched in the matching threads. */
  search(file: string, options: SearchOptions): Promise<SearchOutcome> {
    const vibe = this.vibe ? (pcm: Float32Array, k: number) => this.vibeSearch(pcm, k) : undefined;
    if (options.mode === 'vibe') this.requireVibe();
    return searchClip({ threads: this.matchThreads(), resolve: (m) => this.resolve(m), vibe }, file, options);
  }

  /** A live session's exact lane, in a matching thread. */
  openLive(options: LiveMatchOptions, events: LiveMatchEvents): LiveMatchHandle {
    return this.matchThreads().open(options, events);
  }

  threadStats(): MatchThreadStats {
    return this.matchThreads().stats();
  }

  /**
   * The catalog tracks that sound most like a clip of 16 kHz mono PCM, best first (the vibe
   * lane); the clip is embedded in the worker pool. Throws LANE_UNAVAILABLE without a model.
   */
  async vibeSearch(pcm: Float32Array, maxResults: number): Promise<TrackVibeMatch[]> {
    const lane = this.lane();
    const hits = await lane.search(pcm.subarray(0, MAX_QUERY_SECONDS * SAMPLE_RATE), maxResults);
    const tracks = await this.tracksByFpId(hits.map((h) => h.fpId));
    const embeddingModel = lane.space().id;
    return hits.flatMap((h) => {
      const track = tracks.get(h.fpId);
      return track ? [{ track, similarity: h.similarity, embeddingModel }] : [];
    });
  }

  /**
   * The catalog track this audio is another copy of (re-encoded, re-tagged), if any: excerpts
   * from its start, middle and end must each match one track at their own place in it, and the
   * durations must agree. Distinct tracks that share a loop fail the placement or the duration.
   */
  private async findSameRecording(pcm: Float32Array): Promise<SameRecording | undefined> {
    const seconds = pcm.length / SAMPLE_RATE;
    const len = Math.min(10, seconds);
    const starts = seconds < 20 ? [0] : [0.1, 0.5, 0.9].map((f) => f * (seconds - len));
    // Track -> confidence at each excerpt so far. Most files are new: their first excerpt
    // matches nothing and the other two are not looked up.
    let agree = new Map<number, number[]>();
    for (const [k, start] of starts.entries()) {
      const at = Math.round(start * SAMPLE_RATE);
      const next = new Map<number, number[]>();
      for (const m of matchClip(this.index, this.matcher, pcm.subarray(at, at + Math.round(len * SAMPLE_RATE)), 3)) {
        const before = k === 0 ? [] : agree.get(m.fpId);
        // A copy plays at its original's speed: a faster or slower one is another recording.
        const inPlace = Math.abs(m.offsetSeconds - start) <= 1 && Math.abs(m.timeScale - 1) <= 0.005;
        if (before && !next.has(m.fpId) && inPlace) next.set(m.fpId, [...before, m.confidence]);
      }
      agree = next;
      if (agree.size === 0) return undefined;
    }
    const mean = (c: number[]) => c.reduce((a, b) => a + b, 0) / c.length;
    const [best] = [...agree.entries()].sort((a, b) => mean(b[1]) - mean(a[1]));
    const track = (await this.tracksByFpId([best![0]])).get(best![0]);
    if (!track || Math.abs(track.duration_seconds - seconds) > Math.max(1.5, 0.02 * seconds)) return undefined;
    return { track, confidence: mean(best![1]) };
  }

  /** Attaches catalog rows to matches; a match whose track is not visible (deleted) is dropped. */
  private async resolve(matches: Match[]): Promise<TrackMatch[]> {
    const tracks = await this.tracksByFpId(matches.map((m) => m.fpId));
    return matches.flatMap(({ fpId, ...m }) => {
      const track = tracks.get(fpId);
      return track ? [{ ...m, track }] : [];
    });
  }

  private lane(): VibeLane {
    if (!this.vibe) throw new AppError('LANE_UNAVAILABLE', `the vibe lane is not available: ${this.vibeUnavailable}`);
    return this.vibe;
  }

  private matchThreads(): MatchThreads {
    if (!this.threads) throw new AppError('INTERNAL', 'this engine was opened without matching threads');
    return this.threads;
  }

  /** Removes tracks' postings, vectors, raw files and rows, in that order. */
  private async undo(tracks: { id: string; fpId: number; raw_path: string }[]): Promise<void> {
    if (tracks.length === 0) return;
    this.store.transaction(() => {
      for (const t of tracks) this.index.remove(t.fpId);
    });
    await this.vectors.removeTracks(tracks.map((t) => t.fpId));
    for (const t of tracks) if (t.raw_path) await this.raw.remove(t.raw_path);
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
    log.info('settled an interrupted ingest or deletion', {
      rows: unsettled.length,
      postings: orphanTracks.length,
      vectors: orphanVectors.length,
      files: orphanFiles.length,
      staged,
    });
  }
}

/**
 * The index cannot serve: a damaged file (`cause`, whose own words go to the log), or contents
 * that do not agree with the catalog.
 */
function indexCorrupt(dataDir: string, why: string, cause?: unknown): AppError {
  const dir = path.join(dataDir, 'index');
  if (cause !== undefined) log.error('the fingerprint index cannot be read', { dir, error: cause instanceof Error ? cause.message : String(cause) });
  return new AppError('INDEX_CORRUPT', `the fingerprint index under ${dir} ${why}: run \`audio-ident rebuild-index\` to rebuild it from the stored originals`, {
    cause,
  });
}
