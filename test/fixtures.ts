// Shared set-up for engine tests: a handful of small-corpus tracks, ingested once per test file
// into a throwaway data dir.
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { loadConfig, type Config } from '../src/config.js';
import { setLogLevel } from '../src/log.js';
import { fetchCorpus, type CorpusTrack } from './corpus.js';

setLogLevel('warn');

export async function tempDataDir(): Promise<Config> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-test-'));
  return loadConfig({}, { dataDir });
}

/** Catalog and non-catalog tracks from the small corpus, chosen by name so runs agree. */
export async function smallCorpusSplit(): Promise<{ catalog: CorpusTrack[]; outside: CorpusTrack[] }> {
  const all = await fetchCorpus('small');
  // One or two tracks of each package in the catalog, others outside.
  const byPkg = new Map<string, CorpusTrack[]>();
  for (const t of all) byPkg.set(t.pkg, [...(byPkg.get(t.pkg) ?? []), t]);
  const catalog: CorpusTrack[] = [];
  const outside: CorpusTrack[] = [];
  for (const tracks of byPkg.values()) {
    tracks.sort((a, b) => a.name.localeCompare(b.name));
    catalog.push(...tracks.slice(0, 2));
    outside.push(...tracks.slice(2, 3));
  }
  return { catalog, outside };
}
