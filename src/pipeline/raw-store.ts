// Original files, stored once under DATA/raw/ab/<sha256>.<ext>. A file is first copied to
// DATA/raw/.staging/<pid>.<sha256>.<ext> and moved into place only after its catalog row is
// committed, so a crash at any point leaves either a staged file (removed, or moved into place
// if its row did commit) or a complete track.
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';

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

  /**
   * Settles what a crashed ingest left behind: staged files of dead processes are moved into
   * place when their track committed, removed otherwise.
   */
  async recover(isCommitted: (sha256: string) => string | undefined): Promise<{ published: number; removed: number }> {
    let names: string[];
    try {
      names = await readdir(this.staging);
    } catch {
      return { published: 0, removed: 0 };
    }
    let published = 0;
    let removed = 0;
    for (const name of names) {
      const [pid, sha] = name.split('.');
      if (!pid || !sha || isAlive(Number(pid))) continue;
      const file = path.join(this.staging, name);
      const relative = isCommitted(sha);
      if (relative && !(await exists(this.absolute(relative)))) {
        await this.publish(file, relative);
        published++;
      } else {
        await rm(file, { force: true });
        removed++;
      }
    }
    return { published, removed };
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

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
