// A data dir the server cannot write: a full disk, a read-only mount, a directory that cannot be
// created. Each gives STORAGE_ERROR naming the path and the reason, in one line of the CLI.
// The disks are small tmpfs mounts, which needs root (as CI runs); elsewhere the test is skipped.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cliEnv } from './fixtures.js';

const mounts: string[] = [];
let canMount = true;
const mount = (opts: string) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audio-ident-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
};
before(() => {
  try {
    mount('size=1m');
  } catch {
    canMount = false;
  }
});
after(() => {
  for (const m of mounts) {
    spawnSync('umount', [m]);
    rmSync(m, { recursive: true, force: true });
  }
});

const cli = (dataDir: string) =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', 'tracks', 'list'], {
    env: { ...cliEnv(), AUDIO_IDENT_DATA_DIR: dataDir },
    encoding: 'utf8',
  });

test('a full disk, a read-only mount and a directory that cannot be created each say so, naming the path', (t) => {
  if (!canMount) return t.skip('mounting a tmpfs needs root');
  const cases: [string, RegExp][] = [
    [path.join(mounts[0]!, 'data'), /the disk is nearly full \(\d+\.\d MB free/],
    [mount('size=4m,ro'), /the file system is read-only \(EROFS\)/],
    [path.join(mount('size=4m,ro'), 'deep', 'data'), /a directory on the path is missing and cannot be created/],
  ];
  for (const [dir, why] of cases) {
    const r = cli(dir);
    assert.notEqual(r.status, 0, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^error: \\[STORAGE_ERROR\\] cannot write under ${dir.replace(/[/.-]/g, '\\$&')}: `));
    assert.match(lines[0]!, why);
  }
});
