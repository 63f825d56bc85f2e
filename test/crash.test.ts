// Crash consistency: a real `audio-ident ingest` process is killed (SIGKILL) at varied moments;
// after each restart the catalog, the fingerprint index, the vibe vectors and the raw files must
// agree, and a final run completes the ingest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Engine } from '../src/engine/engine.js';
import { MUSICNN_MODEL } from '../src/vibe/models.js';
import { rng } from '../tools/corpus.js';
import { musicnnMissing } from './fixtures.js';
import { cliEnv, smallCorpusSplit, tempDataDir, type Backend } from './fixtures.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

function ingestProcess(dataDir: string, databaseUrl: string | undefined, files: string[], vibe = false) {
  const env = cliEnv();
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  if (vibe) env.AUDIO_IDENT_VIBE_MODEL = 'musicnn';
  env.AUDIO_IDENT_LOG_LEVEL = 'warn';
  // A commit per track, so that kills land between and inside commits, not only in decoding.
  env.AUDIO_IDENT_INGEST_BATCH_POSTINGS = '1';
  env.AUDIO_IDENT_CONCURRENCY = '1';
  const child = spawn(process.execPath, [CLI, 'ingest', '--data-dir', dataDir, ...files], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  /** Resolves once the first file is through (embedded and committed, or skipped), or the process is gone. */
  const firstDone = new Promise<void>((resolve) => {
    child.stderr.on('data', () => /ingest 1\//.test(out) && resolve());
    void exited.then(() => resolve());
  });
  return { child, exited, firstDone, output: () => out };
}

async function assertConsistent(engine: Engine, label: string): Promise<number> {
  const inv = await engine.inventory();
  const { tracks } = inv;
  const indexed = new Set(inv.indexed);
  assert.equal(inv.unsettled, 0, `${label}: unsettled rows left`);
  for (const t of tracks) {
    assert.ok(indexed.has(t.fpId), `${label}: ${t.file_name} has no postings`);
    assert.ok(existsSync(engine.originalPath(t)), `${label}: ${t.file_name} has no raw file`);
  }
  assert.deepEqual([...indexed].sort(), tracks.map((t) => t.fpId).sort(), `${label}: postings without a track`);
  assert.deepEqual(inv.originals.sort(), tracks.map((t) => t.raw_path).sort(), `${label}: raw files without a track`);
  assert.deepEqual(inv.staged, [], `${label}: staged files left`);
  assert.equal(engine.stats().tracks, tracks.length, `${label}: index track count`);
  // Vectors: exactly the tracks ingested with the vibe lane on have them.
  const embedded = inv.embedded.sort();
  assert.deepEqual(
    embedded,
    tracks
      .filter((t) => t.embedding_model !== null)
      .map((t) => t.fpId)
      .sort(),
    `${label}: vectors and tracks disagree`,
  );
  return tracks.length;
}

for (const [backend, kills] of [
  ['server', 6],
  ['embedded', 4],
] as [Backend, number][]) {
  test(`killing ingest at any moment leaves the ${backend} catalog, index and raw files in agreement`, async () => {
    const { catalog } = await smallCorpusSplit();
    const files = catalog.slice(0, 12).map((t) => t.file);
    const config = await tempDataDir(backend);
    const r = rng(backend === 'server' ? 11 : 12);
    const seen: number[] = [];
    for (let k = 0; k < kills; k++) {
      const p = ingestProcess(config.dataDir, config.databaseUrl, files);
      // From start-up (opening the stores) through decode to the commits of the batches.
      const delay = 300 + r() * 4000;
      const timer = setTimeout(() => p.child.kill('SIGKILL'), delay);
      const code = await p.exited;
      clearTimeout(timer);
      const engine = await Engine.open(config);
      try {
        seen.push(await assertConsistent(engine, `kill ${k + 1} after ${delay.toFixed(0)} ms (exit ${code})`));
      } finally {
        await engine.close();
      }
    }
    const final = ingestProcess(config.dataDir, config.databaseUrl, files);
    assert.equal(await final.exited, 0, final.output());
    const engine = await Engine.open(config);
    try {
      assert.equal(await assertConsistent(engine, 'after the final run'), files.length);
    } finally {
      await engine.close();
    }
    console.log(`${backend}: tracks committed when killed: ${seen.join(', ')}`);
  });
}

test('killing ingest with the vibe lane on leaves no vectors without a track and no embedded track without vectors', { skip: musicnnMissing() }, async () => {
  const { catalog } = await smallCorpusSplit();
  // The shortest tracks: each is embedded in the worker pool before its commit.
  const files = [...catalog]
    .sort((a, b) => a.duration - b.duration)
    .slice(0, 4)
    .map((t) => t.file);
  const config = await tempDataDir('embedded');
  const r = rng(13);
  const seen: number[] = [];
  for (let k = 0; k < 3; k++) {
    const p = ingestProcess(config.dataDir, undefined, files, true);
    await p.firstDone;
    // Through the embedding and the commits (vectors included) of the following tracks.
    const delay = r() * 15000;
    const timer = setTimeout(() => p.child.kill('SIGKILL'), delay);
    const code = await p.exited;
    clearTimeout(timer);
    const engine = await Engine.open(config);
    try {
      seen.push(await assertConsistent(engine, `vibe kill ${k + 1} ${delay.toFixed(0)} ms after the first file (exit ${code})`));
    } finally {
      await engine.close();
    }
  }
  const final = ingestProcess(config.dataDir, undefined, files, true);
  assert.equal(await final.exited, 0, final.output());
  const engine = await Engine.open(config);
  try {
    assert.equal(await assertConsistent(engine, 'after the final vibe run'), files.length);
    const { tracks } = await engine.listTracks();
    assert.ok(
      tracks.every((t) => t.embedding_model === MUSICNN_MODEL.id),
      'every track embedded',
    );
    assert.equal((await engine.vectorCount()).track, files.length);
  } finally {
    await engine.close();
  }
  console.log(`vibe: tracks committed when killed: ${seen.join(', ')}`);
});
