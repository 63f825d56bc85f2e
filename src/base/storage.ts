// The data dir's disk, in words an operator can act on: a full disk, a read-only mount or a
// missing permission is named with its path, never left as an errno object or a stack.
import { statfs, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from './errors.js';

/** Less free space than this at start, and the embedded catalog or the index could not grow. */
const MIN_FREE_BYTES = 64 * 2 ** 20;

const WHY: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
  // mkdir -p under a read-only mount or a vanished parent
  ENOENT: 'a directory on the path is missing and cannot be created',
};

/** A file-system failure as STORAGE_ERROR naming `where`, or undefined for other errors. */
export function storageError(e: unknown, where: string): AppError | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why = code ? WHY[code] : undefined;
  return why ? new AppError('STORAGE_ERROR', `cannot write under ${where}: ${why} (${code})`, { cause: e }) : undefined;
}

/** Creates `dir` if need be and checks that a file can be written there and that the disk has room. */
export async function checkWritable(dir: string): Promise<void> {
  const probe = path.join(dir, `.write-check-${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, 'ok');
    await rm(probe, { force: true });
  } catch (e) {
    throw storageError(e, dir) ?? e;
  }
  const s = await statfs(dir);
  const free = s.bavail * s.bsize;
  if (free < MIN_FREE_BYTES) {
    throw new AppError(
      'STORAGE_ERROR',
      `cannot write under ${dir}: the disk is nearly full (${(free / 2 ** 20).toFixed(1)} MB free; at least ${MIN_FREE_BYTES / 2 ** 20} MB are needed)`,
    );
  }
}
