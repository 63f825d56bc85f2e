// Track metadata in PostgreSQL. A row is created 'pending' before its postings are written and
// becomes 'indexed' (visible) after its postings and raw file are in place; deletion marks it
// 'deleting' first. Rows that are not 'indexed' are invisible to every reader, and the engine
// settles those a crashed process left behind (see engine.ts).
import { printable } from '../base/text.js';
import type { Sql } from './database.js';

export interface Track {
  id: string;
  /** Number of the track in the fingerprint index. */
  fpId: number;
  title: string;
  artist: string | null;
  album: string | null;
  duration_seconds: number;
  sample_rate: number | null;
  channels: number | null;
  bitrate: number | null;
  format: string;
  /** Base name of the ingested file. */
  file_name: string;
  sha256: string;
  file_size_bytes: number;
  /** Path of the stored original, relative to the data dir. */
  raw_path: string;
  ingested_at: string;
  /** The embedding model of the track's vibe vectors; null: the track has none. */
  embedding_model: string | null;
  /** The track's strongest tags by that model, strongest first. */
  vibe_tags: string[];
}

/** What the vibe lane records of a track beside its vectors. */
export type TrackVibe = Pick<Track, 'embedding_model' | 'vibe_tags'> & { embedding_dim: number | null };

/** What a person may correct after ingest. */
export interface TrackMetadata {
  title?: string;
  artist?: string | null;
  album?: string | null;
}

export type NewTrack = Omit<Track, 'id' | 'fpId' | 'ingested_at' | 'embedding_model' | 'vibe_tags'>;

export interface UnsettledRow {
  id: string;
  fpId: number;
  status: 'pending' | 'deleting';
  owner: string | null;
  raw_path: string;
}

export interface DuplicateReport {
  file_name: string;
  sha256: string;
  duplicate_of: string;
  reason: 'same_file' | 'same_recording';
  confidence: number;
}

/** A `tracks` row as postgres.js returns it: the columns that differ from Track by name or type. */
type Row = Omit<Track, 'fpId' | 'sha256' | 'raw_path' | 'file_size_bytes' | 'ingested_at' | 'vibe_tags'> & {
  vibe_tags: string[] | null;
  fp_id: number;
  file_hash_sha256: string;
  file_path: string;
  file_size_bytes: string;
  ingested_at: Date;
};

const toTrack = (r: Row): Track => ({
  id: r.id,
  fpId: r.fp_id,
  title: r.title,
  artist: r.artist,
  album: r.album,
  duration_seconds: r.duration_seconds,
  sample_rate: r.sample_rate,
  channels: r.channels,
  bitrate: r.bitrate,
  format: r.format,
  file_name: r.file_name,
  sha256: r.file_hash_sha256,
  file_size_bytes: Number(r.file_size_bytes),
  raw_path: r.file_path,
  ingested_at: r.ingested_at.toISOString(),
  embedding_model: r.embedding_model,
  vibe_tags: r.vibe_tags ?? [],
});

export class Catalog {
  constructor(private readonly sql: Sql) {}

  /**
   * Creates rows in state 'pending', owned by `owner`, in one transaction. A file whose hash is
   * already in the catalog (another process got there first) gives null in its place.
   */
  async insertPending(items: (NewTrack & Partial<TrackVibe> & { id: string })[], owner: string): Promise<(Track | null)[]> {
    if (items.length === 0) return [];
    return this.sql.begin(async (tx) => {
      const out: (Track | null)[] = [];
      for (const t of items) {
        const [row] = await tx<Row[]>`
          INSERT INTO tracks (id, title, artist, album, duration_seconds, sample_rate, channels, bitrate, format,
                              file_name, file_hash_sha256, file_size_bytes, file_path, ingest_owner,
                              embedding_model, embedding_dim, vibe_tags)
          VALUES (${t.id}, ${printable(t.title, 500)}, ${t.artist ? printable(t.artist, 500) : null}, ${t.album ? printable(t.album, 500) : null},
                  ${t.duration_seconds}, ${t.sample_rate}, ${t.channels}, ${t.bitrate}, ${t.format}, ${t.file_name},
                  ${t.sha256}, ${t.file_size_bytes}, ${t.raw_path}, ${owner},
                  ${t.embedding_model ?? null}, ${t.embedding_dim ?? null}, ${tx.array(t.vibe_tags ?? [])})
          ON CONFLICT (file_hash_sha256) DO NOTHING
          RETURNING *`;
        out.push(row ? toTrack(row) : null);
      }
      return out;
    });
  }

  /** Records a re-embedding (rebuild-index --vibe). */
  async setVibe(rows: (TrackVibe & { id: string })[]): Promise<void> {
    await this.sql.begin(async (tx) => {
      for (const r of rows) {
        await tx`UPDATE tracks SET embedding_model = ${r.embedding_model}, embedding_dim = ${r.embedding_dim}, vibe_tags = ${tx.array(r.vibe_tags)},
          updated_at = now() WHERE id = ${r.id}`;
      }
    });
  }

  async markIndexed(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.sql`UPDATE tracks SET fingerprint_status = 'indexed', ingest_owner = NULL, updated_at = now() WHERE id IN ${this.sql(ids)}`;
  }

  /** Hides an indexed track ahead of its removal; undefined when there is no such track. */
  async beginDelete(id: string): Promise<Track | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.sql<Row[]>`
      UPDATE tracks SET fingerprint_status = 'deleting', updated_at = now()
      WHERE id = ${id} AND fingerprint_status = 'indexed' RETURNING *`;
    return row ? toTrack(row) : undefined;
  }

  /**
   * Corrects a visible track's title, artist or album (a field left out stays; null clears artist
   * or album); undefined when there is no such track.
   */
  async updateMetadata(id: string, fields: TrackMetadata): Promise<Track | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.sql<Row[]>`
      UPDATE tracks SET
        title = CASE WHEN ${fields.title !== undefined} THEN ${fields.title === undefined ? null : printable(fields.title, 500)} ELSE title END,
        artist = CASE WHEN ${fields.artist !== undefined} THEN ${fields.artist ? printable(fields.artist, 500) : null} ELSE artist END,
        album = CASE WHEN ${fields.album !== undefined} THEN ${fields.album ? printable(fields.album, 500) : null} ELSE album END,
        updated_at = now()
      WHERE id = ${id} AND fingerprint_status = 'indexed' RETURNING *`;
    return row ? toTrack(row) : undefined;
  }

  async deleteRows(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.sql`DELETE FROM tracks WHERE id IN ${this.sql(ids)}`;
  }

  async get(id: string): Promise<Track | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.sql<Row[]>`SELECT * FROM tracks WHERE id = ${id} AND fingerprint_status = 'indexed'`;
    return row ? toTrack(row) : undefined;
  }

  async getBySha(sha256: string): Promise<Track | undefined> {
    const [row] = await this.sql<Row[]>`SELECT * FROM tracks WHERE file_hash_sha256 = ${sha256} AND fingerprint_status = 'indexed'`;
    return row ? toTrack(row) : undefined;
  }

  /** Visible tracks by their fingerprint-index numbers. */
  async byFpIds(fpIds: number[]): Promise<Map<number, Track>> {
    if (fpIds.length === 0) return new Map();
    const rows = await this.sql<Row[]>`SELECT * FROM tracks WHERE fp_id IN ${this.sql(fpIds)} AND fingerprint_status = 'indexed'`;
    return new Map(rows.map((r) => [r.fp_id, toTrack(r)]));
  }

  /** Visible tracks, oldest first, optionally those whose title, artist, album or file name contain `q`. */
  async list(opts: { q?: string; limit?: number; offset?: number } = {}): Promise<{ tracks: Track[]; total: number }> {
    const sql = this.sql;
    const pattern = opts.q ? `%${opts.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
    const where = pattern
      ? sql`fingerprint_status = 'indexed' AND (title ILIKE ${pattern} OR artist ILIKE ${pattern} OR album ILIKE ${pattern} OR file_name ILIKE ${pattern})`
      : sql`fingerprint_status = 'indexed'`;
    const [{ n }] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tracks WHERE ${where}`;
    const rows = await sql<Row[]>`
      SELECT * FROM tracks WHERE ${where} ORDER BY ingested_at, file_name, id
      LIMIT ${opts.limit ?? null} OFFSET ${opts.offset ?? 0}`;
    return { tracks: rows.map(toTrack), total: n };
  }

  async count(): Promise<number> {
    const [{ n }] = await this.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tracks WHERE fingerprint_status = 'indexed'`;
    return n;
  }

  /** Rows left 'pending' or 'deleting'. */
  async unsettled(): Promise<UnsettledRow[]> {
    const rows = await this.sql<{ id: string; fp_id: number; fingerprint_status: 'pending' | 'deleting'; ingest_owner: string | null; file_path: string }[]>`
      SELECT id, fp_id, fingerprint_status, ingest_owner, file_path FROM tracks WHERE fingerprint_status <> 'indexed'`;
    return rows.map((r) => ({ id: r.id, fpId: r.fp_id, status: r.fingerprint_status, owner: r.ingest_owner, raw_path: r.file_path }));
  }

  /** Index numbers of the visible tracks. */
  async indexedFpIds(): Promise<number[]> {
    const rows = await this.sql<{ fp_id: number }[]>`SELECT fp_id FROM tracks WHERE fingerprint_status = 'indexed'`;
    return rows.map((r) => r.fp_id);
  }

  /** Every row's index number and raw file, whatever its state: what other stores may hold. */
  async references(): Promise<{ fpIds: Set<number>; rawPaths: Set<string> }> {
    const rows = await this.sql<{ fp_id: number; file_path: string }[]>`SELECT fp_id, file_path FROM tracks`;
    return { fpIds: new Set(rows.map((r) => r.fp_id)), rawPaths: new Set(rows.map((r) => r.file_path)) };
  }

  async reportDuplicate(r: DuplicateReport): Promise<void> {
    await this.sql`
      INSERT INTO duplicate_reports (file_name, file_hash_sha256, duplicate_of, reason, confidence)
      VALUES (${r.file_name}, ${r.sha256}, ${r.duplicate_of}, ${r.reason}, ${r.confidence})`;
  }

  async duplicateReports(limit = 100): Promise<(DuplicateReport & { reported_at: string })[]> {
    const rows = await this.sql<
      { file_name: string; file_hash_sha256: string; duplicate_of: string; reason: DuplicateReport['reason']; confidence: number; reported_at: Date }[]
    >`
      SELECT file_name, file_hash_sha256, duplicate_of, reason, confidence, reported_at
      FROM duplicate_reports ORDER BY reported_at DESC, id DESC LIMIT ${limit}`;
    return rows.map((r) => ({
      file_name: r.file_name,
      sha256: r.file_hash_sha256,
      duplicate_of: r.duplicate_of,
      reason: r.reason,
      confidence: r.confidence,
      reported_at: r.reported_at.toISOString(),
    }));
  }
}

const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
