// Versioned schema migrations, applied in order at start-up. A migration, once released, is never
// edited: a change of schema is a new entry.
import type { Sql } from './database.js';

const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'tracks',
    sql: `
      CREATE SEQUENCE tracks_fp_id_seq;
      CREATE TABLE tracks (
        id UUID PRIMARY KEY,
        -- the track's number in the fingerprint index
        fp_id INTEGER NOT NULL UNIQUE DEFAULT nextval('tracks_fp_id_seq'),
        title VARCHAR(500) NOT NULL,
        artist VARCHAR(500),
        album VARCHAR(500),
        duration_seconds DOUBLE PRECISION NOT NULL,
        sample_rate INTEGER,
        channels INTEGER,
        bitrate INTEGER,
        format VARCHAR(20) NOT NULL,
        file_name TEXT NOT NULL,
        file_hash_sha256 VARCHAR(64) NOT NULL,
        file_size_bytes BIGINT NOT NULL,
        file_path TEXT NOT NULL,
        -- pending: being ingested by ingest_owner; indexed: visible; deleting: being removed
        fingerprint_status VARCHAR(16) NOT NULL DEFAULT 'pending'
          CHECK (fingerprint_status IN ('pending', 'indexed', 'deleting')),
        ingest_owner TEXT,
        embedding_model VARCHAR(100),
        embedding_dim INTEGER,
        ingested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX ix_tracks_file_hash ON tracks (file_hash_sha256);
      CREATE INDEX ix_tracks_artist_title ON tracks (artist, title);
      CREATE INDEX ix_tracks_ingested_at ON tracks (ingested_at);
    `,
  },
  {
    version: 2,
    name: 'duplicate reports',
    sql: `
      CREATE TABLE duplicate_reports (
        id BIGSERIAL PRIMARY KEY,
        file_name TEXT NOT NULL,
        file_hash_sha256 VARCHAR(64) NOT NULL,
        duplicate_of UUID NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
        reason VARCHAR(20) NOT NULL CHECK (reason IN ('same_file', 'same_recording')),
        confidence DOUBLE PRECISION NOT NULL,
        reported_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      CREATE INDEX ix_duplicate_reports_reported_at ON duplicate_reports (reported_at);
    `,
  },
  {
    version: 3,
    name: 'vibe tags',
    sql: `ALTER TABLE tracks ADD COLUMN vibe_tags TEXT[] NOT NULL DEFAULT '{}';`,
  },
];

export async function migrate(sql: Sql): Promise<number> {
  return sql.begin(async (tx) => {
    // Two processes starting on one database apply each migration once.
    await tx`SELECT pg_advisory_xact_lock(7310342)`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ version: number }[]>`SELECT version FROM schema_migrations`).map((r) => r.version));
    let applied = 0;
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied++;
    }
    return applied;
  });
}
