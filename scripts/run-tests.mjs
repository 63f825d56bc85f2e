// Runs every compiled test file with node's test runner (Node 20 has no glob for --test).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const files = [];
const walk = (d) => {
  for (const e of readdirSync(d)) {
    const p = path.join(d, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.test.js')) files.push(p);
  }
};
walk('dist');
if (files.length === 0) {
  console.error('no test files under dist/: run the build first');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files.sort()], { stdio: 'inherit' });
process.exit(r.status ?? 1);
