// Whether a process of this machine still runs: owners of staged files, pending catalog rows
// and the embedded catalog are checked with it after a crash.
import os from 'node:os';

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Names this process for rows it leaves pending: host and pid. */
export const processOwner = `${os.hostname()}:${process.pid}`;

/** Whether the owner of a pending row is gone (only decidable for this host's processes). */
export function ownerGone(owner: string): boolean {
  const at = owner.lastIndexOf(':');
  return owner.slice(0, at) === os.hostname() && !isAlive(Number(owner.slice(at + 1)));
}
