// The LMDB environment of the fingerprint index, under DATA/index. A rebuild writes a complete
// new environment beside it (DATA/index-rebuild), marks it complete, then swaps directories;
// opening finishes or discards a swap that a crash interrupted, so the index is always whole.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';

const COMPLETE = 'COMPLETE';

export class DataStore {
  private constructor(readonly env: RootDatabase) {}

  static open(dataDir: string, which: 'current' | 'rebuild' = 'current'): DataStore {
    const dirs = storeDirs(dataDir);
    if (which === 'current') settleSwap(dirs);
    else rmSync(dirs.rebuild, { recursive: true, force: true });
    const dir = which === 'current' ? dirs.current : dirs.rebuild;
    mkdirSync(dir, { recursive: true });
    return new DataStore(open({ path: dir, maxDbs: 16, compression: false, cache: false }));
  }

  /** Whether the data dir has an index yet. */
  static exists(dataDir: string): boolean {
    return existsSync(path.join(storeDirs(dataDir).current, 'data.mdb'));
  }

  /**
   * The current environment for reading only, for threads of a process that opened it with
   * `open` (which settled any interrupted swap): a reader never moves directories.
   */
  static openReader(dataDir: string): DataStore {
    return new DataStore(open({ path: storeDirs(dataDir).current, maxDbs: 16, compression: false, cache: false, readOnly: true }));
  }

  /** Runs fn in one write transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    return this.env.transactionSync(fn);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}

/** Makes a closed rebuild environment the current one. */
export function swapInRebuild(dataDir: string): void {
  const dirs = storeDirs(dataDir);
  writeFileSync(path.join(dirs.rebuild, COMPLETE), '');
  settleSwap(dirs);
}

function storeDirs(dataDir: string) {
  return { current: path.join(dataDir, 'index'), rebuild: path.join(dataDir, 'index-rebuild'), old: path.join(dataDir, 'index-old') };
}

function settleSwap(d: ReturnType<typeof storeDirs>): void {
  if (existsSync(path.join(d.rebuild, COMPLETE))) {
    if (existsSync(d.current)) {
      rmSync(d.old, { recursive: true, force: true });
      renameSync(d.current, d.old);
    }
    renameSync(d.rebuild, d.current);
    rmSync(path.join(d.current, COMPLETE));
  } else if (!existsSync(d.current) && existsSync(d.old)) {
    renameSync(d.old, d.current);
  }
  rmSync(d.rebuild, { recursive: true, force: true });
  rmSync(d.old, { recursive: true, force: true });
}
