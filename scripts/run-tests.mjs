// Runs every compiled test file with node's test runner (Node 20 has no glob for --test).
// Catalog tests need a real PostgreSQL server: DATABASE_URL when given, else a throwaway cluster
// started here from the installed binaries and stopped afterwards.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { startThrowawayPostgres } from './pg-throwaway.mjs';

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
const only = process.argv.slice(2);
const chosen = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;

let pg;
const env = { ...process.env };
if (!env.DATABASE_URL) {
  pg = await startThrowawayPostgres();
  env.DATABASE_URL = pg.url;
  console.log(`# throwaway PostgreSQL at ${pg.url}`);
}
let status = 1;
try {
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...chosen.sort()], { stdio: 'inherit', env });
  status = r.status ?? 1;
} finally {
  pg?.stop();
}
process.exit(status);
