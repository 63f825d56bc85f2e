// The LMDB environment under the data dir. The fingerprint index and (until the catalog moves
// to PostgreSQL) the track catalog keep their tables in it, so one transaction covers both.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';

export class DataStore {
  private constructor(readonly env: RootDatabase) {}

  static open(dataDir: string): DataStore {
    const dir = path.join(dataDir, 'index');
    mkdirSync(dir, { recursive: true });
    const env = open({ path: dir, maxDbs: 16, compression: false, cache: false });
    return new DataStore(env);
  }

  /** Runs fn in one write transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    return this.env.transactionSync(fn);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
