// Track metadata. Kept in the data dir's LMDB environment beside the index, so a track and its
// postings become visible in one transaction.
import { randomUUID } from 'node:crypto';
import type { Database } from 'lmdb';
import type { DataStore } from './store.js';

export interface Track {
  id: string;
  /** Number of the track in the fingerprint index. */
  fpId: number;
  title: string;
  artist: string | null;
  album: string | null;
  duration_seconds: number;
  /** Base name of the ingested file. */
  file_name: string;
  sha256: string;
  format: string;
  file_size_bytes: number;
  /** Path of the stored original, relative to the data dir. */
  raw_path: string;
  ingested_at: string;
}

export type NewTrack = Omit<Track, 'id' | 'fpId' | 'ingested_at'>;

export class Catalog {
  private readonly tracks: Database<Track, string>;
  private readonly bySha: Database<string, string>;
  private readonly byFp: Database<string, number>;
  private readonly meta: Database<number, string>;

  constructor(store: DataStore) {
    const env = store.env;
    this.tracks = env.openDB<Track, string>({ name: 'tracks', encoding: 'msgpack' });
    this.bySha = env.openDB<string, string>({ name: 'tracks_by_sha', encoding: 'string' });
    this.byFp = env.openDB<string, number>({ name: 'tracks_by_fp', keyEncoding: 'uint32', encoding: 'string' });
    this.meta = env.openDB<number, string>({ name: 'catalog_meta', encoding: 'msgpack' });
  }

  /** Creates a track row. Call inside DataStore.transaction. */
  insert(t: NewTrack): Track {
    const fpId = (this.meta.get('next_fp_id') ?? 1) as number;
    this.meta.put('next_fp_id', fpId + 1);
    const track: Track = { ...t, id: randomUUID(), fpId, ingested_at: new Date().toISOString() };
    this.tracks.put(track.id, track);
    this.bySha.put(track.sha256, track.id);
    this.byFp.put(fpId, track.id);
    return track;
  }

  /** Removes a track row. Call inside DataStore.transaction. */
  remove(track: Track): void {
    this.tracks.remove(track.id);
    this.bySha.remove(track.sha256);
    this.byFp.remove(track.fpId);
  }

  get(id: string): Track | undefined {
    return this.tracks.get(id);
  }

  getBySha(sha256: string): Track | undefined {
    const id = this.bySha.get(sha256);
    return id === undefined ? undefined : this.tracks.get(id);
  }

  getByFpId(fpId: number): Track | undefined {
    const id = this.byFp.get(fpId);
    return id === undefined ? undefined : this.tracks.get(id);
  }

  list(): Track[] {
    return [...this.tracks.getRange().map(({ value }) => value)].sort(
      (a, b) => a.ingested_at.localeCompare(b.ingested_at) || a.file_name.localeCompare(b.file_name),
    );
  }

  count(): number {
    return (this.tracks.getStats() as { entryCount: number }).entryCount;
  }
}
