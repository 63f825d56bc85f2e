// Original files, stored once under DATA/raw/ab/<sha256>.<ext>. A file is first copied to
// DATA/raw/.staging/<pid>.<sha256>.<ext> and moved into place only after its catalog row and
// postings are committed (engine/engine.ts has the whole order).
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { isAlive } from '../base/process.js';

export class RawStore {
  private readonly staging: string;

  constructor(private readonly dataDir: string) {
    this.staging = path.join(dataDir, 'raw', '.staging');
  }

  /** Path relative to the data dir where a file with this hash is kept. */
  relativePath(sha256: string, ext: string): string {
    return path.join('raw', sha256.slice(0, 2), `${sha256}.${ext}`);
  }

  absolute(relative: string): string {
    return path.join(this.dataDir, relative);
  }

  async stage(src: string, sha256: string, ext: string): Promise<string> {
    await mkdir(this.staging, { recursive: true });
    const staged = path.join(this.staging, `${process.pid}.${sha256}.${ext}`);
    await copyFile(src, staged);
    return staged;
  }

  async publish(staged: string, relative: string): Promise<void> {
    const dst = this.absolute(relative);
    await mkdir(path.dirname(dst), { recursive: true });
    await rename(staged, dst);
  }

  async discard(staged: string): Promise<void> {
    await rm(staged, { force: true });
  }

  async remove(relative: string): Promise<void> {
    await rm(this.absolute(relative), { force: true });
  }

  /** Removes staged copies whose process is gone; returns how many. */
  async removeStaleStaging(): Promise<number> {
    let removed = 0;
    for (const name of await listDir(this.staging)) {
      if (isAlive(Number(name.split('.')[0]))) continue;
      await rm(path.join(this.staging, name), { force: true });
      removed++;
    }
    return removed;
  }

  /** Staged copies not yet moved into place or discarded. */
  async staged(): Promise<string[]> {
    return listDir(this.staging);
  }

  /** Every file moved into place, as paths relative to the data dir. */
  async published(): Promise<string[]> {
    const out: string[] = [];
    const root = path.join(this.dataDir, 'raw');
    for (const dir of await listDir(root)) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue;
      for (const name of await listDir(path.join(root, dir))) out.push(path.join('raw', dir, name));
    }
    return out;
  }
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
