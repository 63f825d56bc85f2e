// The engine: catalog, fingerprint index and raw files of one data dir, and the operations that
// keep them in agreement. The CLI, the REST server and live sessions all work through it.
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { Catalog, type NewTrack, type Track } from './catalog.js';
import { SAMPLE_RATE } from './decode.js';
import { FingerprintIndex, type IndexStats } from './fingerprint-index.js';
import { fingerprint, type Hashes } from './fingerprint.js';
import { DEFAULT_MATCHER, VoteTable, type MatcherConfig, type Match } from './matcher.js';
import { RawStore } from './raw-store.js';
import { DataStore } from './store.js';

export const MIN_QUERY_SECONDS = 3;
export const MAX_QUERY_SECONDS = 30;

/** A decoded, fingerprinted file waiting to be committed. */
export interface PreparedTrack {
  meta: NewTrack;
  fp: Hashes;
  staged: string;
}

export interface TrackMatch extends Omit<Match, 'fpId'> {
  track: Track;
}

export class Engine {
  readonly raw: RawStore;

  private constructor(
    readonly config: Config,
    readonly store: DataStore,
    readonly index: FingerprintIndex,
    readonly catalog: Catalog,
    private readonly matcher: MatcherConfig,
  ) {
    this.raw = new RawStore(config.dataDir);
  }

  static async open(config: Config, matcher: MatcherConfig = DEFAULT_MATCHER): Promise<Engine> {
    const store = DataStore.open(config.dataDir);
    try {
      const engine = new Engine(config, store, new FingerprintIndex(store), new Catalog(store), matcher);
      await engine.raw.recover((sha) => engine.catalog.getBySha(sha)?.raw_path);
      return engine;
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** Commits prepared tracks (rows and postings in one transaction), then moves their files in. */
  async commit(items: PreparedTrack[]): Promise<Track[]> {
    if (items.length === 0) return [];
    const tracks = this.store.transaction(() => {
      const created = items.map((it) => this.catalog.insert(it.meta));
      this.index.add(created.map((t, i) => ({ track: t.fpId, fp: items[i]!.fp })));
      return created;
    });
    for (let i = 0; i < items.length; i++) await this.raw.publish(items[i]!.staged, tracks[i]!.raw_path);
    return tracks;
  }

  async removeTrack(id: string): Promise<Track> {
    const track = this.catalog.get(id);
    if (!track) throw new AppError('TRACK_NOT_FOUND', `no track with id ${id}`);
    this.store.transaction(() => {
      this.index.remove(track.fpId);
      this.catalog.remove(track);
    });
    await this.raw.remove(track.raw_path);
    return track;
  }

  /** Identifies a clip of 16 kHz mono PCM: at least 3 s; only its first 30 s are used. */
  identify(pcm: Float32Array, maxResults = 5): TrackMatch[] {
    const seconds = pcm.length / SAMPLE_RATE;
    if (seconds < MIN_QUERY_SECONDS) {
      throw new AppError('AUDIO_TOO_SHORT', `clip is ${seconds.toFixed(1)} s long; at least ${MIN_QUERY_SECONDS} s are needed`);
    }
    const clip = pcm.subarray(0, MAX_QUERY_SECONDS * SAMPLE_RATE);
    const votes = this.newVoteTable();
    votes.add(this.index.lookup(fingerprint(clip, 'query')));
    return this.resolve(votes.best(maxResults));
  }

  /** An empty vote table with this engine's matcher settings, for incremental matching. */
  newVoteTable(): VoteTable {
    return new VoteTable(this.matcher);
  }

  /** Attaches catalog rows to matches; a match whose track was just deleted is dropped. */
  resolve(matches: Match[]): TrackMatch[] {
    const out: TrackMatch[] = [];
    for (const { fpId, ...m } of matches) {
      const track = this.catalog.getByFpId(fpId);
      if (track) out.push({ ...m, track });
    }
    return out;
  }

  stats(): IndexStats {
    return this.index.stats();
  }
}
