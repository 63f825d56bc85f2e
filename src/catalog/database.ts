// The catalog's PostgreSQL connection. DATABASE_URL set: that server. Unset: an embedded
// PostgreSQL (PGlite, compiled to WebAssembly) started in this process with its data under
// DATA/catalog, served on a private Unix socket so that the same postgres.js code talks to both.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { AppError } from '../base/errors.js';
import { isAlive } from '../base/process.js';

export type Sql = postgres.Sql;

export interface Database {
  sql: Sql;
  /** 'server' for DATABASE_URL, 'embedded' for PGlite. */
  kind: 'server' | 'embedded';
  close(): Promise<void>;
}

export async function openDatabase(opts: { databaseUrl: string | undefined; dataDir: string }): Promise<Database> {
  if (opts.databaseUrl) {
    const sql = postgres(opts.databaseUrl, { max: 10, onnotice: () => {}, connect_timeout: 10 });
    try {
      await sql`select 1`;
    } catch (e) {
      await sql.end({ timeout: 1 });
      throw new AppError('DATABASE_UNAVAILABLE', `cannot reach PostgreSQL at ${redact(opts.databaseUrl)}: ${(e as Error).message}`, { cause: e });
    }
    return { sql, kind: 'server', close: () => sql.end({ timeout: 5 }) };
  }
  return openEmbedded(path.join(opts.dataDir, 'catalog'));
}

async function openEmbedded(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true });
  const release = lockDir(dir);
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  let db: InstanceType<typeof PGlite>;
  try {
    db = await PGlite.create(path.join(dir, 'pgdata'));
  } catch (e) {
    release();
    throw e;
  }
  // One connection: PGlite runs one session, and a second client would run inside the first
  // one's open transaction.
  const socket = path.join(os.tmpdir(), `audio-ident-pg-${process.pid}-${randomUUID().slice(0, 8)}.sock`);
  const server = new PGLiteSocketServer({ db, path: socket, maxConnections: 1 });
  await server.start();
  const sql = postgres({ path: socket, max: 1, onnotice: () => {}, username: 'postgres', database: 'postgres' });
  return {
    sql,
    kind: 'embedded',
    close: async () => {
      await sql.end({ timeout: 5 });
      await server.stop();
      await db.close();
      rmSync(socket, { force: true });
      release();
    },
  };
}

// PGlite's files belong to one process at a time.
function lockDir(dir: string): () => void {
  const lock = path.join(dir, 'owner.pid');
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    if (pid !== process.pid && isAlive(pid)) {
      throw new AppError(
        'DATABASE_UNAVAILABLE',
        `the embedded catalog in ${dir} is in use by process ${pid} (a running server?): stop it, or point both at a PostgreSQL server with DATABASE_URL`,
      );
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
