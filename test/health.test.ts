// Probes that tell the truth: liveness and readiness apart, and an index that is damaged or does
// not agree with the catalog refused at start, with a message that names it and the way out.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Config } from '../src/base/config.js';
import { isAppError } from '../src/base/errors.js';
import { DataStore } from '../src/exact/lmdb.js';
import { FingerprintIndex } from '../src/exact/fingerprint-index.js';
import { startServer } from '../src/serve.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';

/** A data dir with a few tracks in its catalog and index, no server running on it. */
async function catalogued(): Promise<Config> {
  const { catalog } = await smallCorpusSplit();
  const config = await tempDataDir('server', { port: 0, vibeModel: 'off' });
  const s = await startServer(config);
  assert.equal((await s.engine.ingest(catalog.slice(0, 4).map((t) => t.file))).created, 4);
  await s.close();
  return config;
}

const refusal = async (config: Config) => {
  try {
    const s = await startServer(config);
    await s.close();
  } catch (e) {
    return e;
  }
  return undefined;
};

test('/livez, /readyz and /health answer for a sound server', async () => {
  const s = await startServer(await catalogued());
  try {
    assert.deepEqual(await (await fetch(`${s.url}/livez`)).json(), { status: 'ok' });
    const ready = await fetch(`${s.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ok', checks: { catalog: 'ok', index: 'ok (4 tracks)' } });
    const health = (await (await fetch(`${s.url}/health`)).json()) as { status: string; checks: Record<string, string> };
    assert.equal(health.status, 'ok', JSON.stringify(health));
  } finally {
    await s.close();
  }
});

test('an index file with random bytes written into it is refused at start: INDEX_CORRUPT, naming the file and rebuild-index', async () => {
  const config = await catalogued();
  const file = path.join(config.dataDir, 'index', 'data.mdb');
  const pages = statSync(file).size / 4096;
  const fd = openSync(file, 'r+');
  // Every third page past the two meta pages: what a failing disk or a stray write leaves.
  for (let p = 2; p < pages; p += 3) writeSync(fd, randomBytes(4096), 0, 4096, p * 4096);
  closeSync(fd);
  const e = await refusal(config);
  assert.ok(isAppError(e, 'INDEX_CORRUPT'), String(e));
  assert.match((e as Error).message, new RegExp(`${path.join(config.dataDir, 'index').replace(/[/.]/g, '\\$&')}.*rebuild-index`));
});

test('an index that lacks a catalog track is refused at start', async () => {
  const config = await catalogued();
  const store = DataStore.open(config.dataDir);
  const index = new FingerprintIndex(store);
  store.transaction(() => index.remove(index.trackNumbers()[0]!));
  await store.close();
  const e = await refusal(config);
  assert.ok(isAppError(e, 'INDEX_CORRUPT'), String(e));
  assert.match((e as Error).message, /lacks the fingerprints of 1 of the catalog's 4 tracks/);
});
