// Shared set-up for tests: throwaway data dirs with their own catalog database, and a split of
// the small corpus into catalog and non-catalog tracks.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import postgres from 'postgres';
import { z } from 'zod';
import { loadConfig, type Config } from '../src/base/config.js';
import { setLogLevel } from '../src/base/log.js';
import { fetchCorpus, type CorpusTrack } from '../tools/corpus.js';

setLogLevel('warn');

export type Backend = 'server' | 'embedded';

/** The PostgreSQL server the test command provides (scripts/run-tests.mjs). */
export function serverUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests with `make test` (it starts a throwaway PostgreSQL)');
  return url;
}

/** A fresh database on the test server, for one data dir. */
export async function freshDatabase(): Promise<string> {
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  const name = `t_${randomUUID().replace(/-/g, '')}`;
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A throwaway data dir whose catalog lives on the test server or in the embedded default. The
 * vibe model is off unless asked for (`vibeModel: 'musicnn'`): embedding every ingested track
 * would multiply the time of the tests that are about other things.
 */
export async function tempDataDir(backend: Backend = 'server', overrides: Partial<Config> = {}): Promise<Config> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-test-'));
  const databaseUrl = backend === 'server' ? await freshDatabase() : undefined;
  return loadConfig({}, { dataDir, databaseUrl, vibeModel: 'off', ...overrides });
}

/** The environment of a CLI child process of a test, without the vibe model (see tempDataDir). */
export function cliEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL'));
  return { ...env, AUDIO_IDENT_VIBE_MODEL: 'off' };
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

/** Why a test that needs the MusiCNN weights cannot run (they are absent), or undefined. */
export function musicnnMissing(): string | undefined {
  return loadConfig({}).musicnnH5 ? undefined : 'the MusiCNN weights (../shared/models/musicnn/MSD_musicnn.h5 or AUDIO_IDENT_MUSICNN_H5) are absent';
}

/** A track as clients see it (the API and the CLI's --json), written here apart from the server's own schema. */
export const TrackInfo = z.object({
  id: z.string().uuid(),
  title: z.string(),
  artist: z.string().nullable(),
  album: z.string().nullable(),
  duration_seconds: z.number(),
  file_name: z.string(),
  ingested_at: z.string(),
});

/** Debian's Chromium, the real browser the web and live-listening tests drive. */
export const CHROMIUM = process.env.AUDIO_IDENT_CHROMIUM ?? '/usr/bin/chromium';
