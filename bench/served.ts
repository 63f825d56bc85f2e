// A served catalog for the load benchmarks: tracks of the shared corpus ingested with the CLI,
// then `audio-ident serve` as its own process, the deployment users run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CorpusTrack } from '../test/corpus.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

export interface Served {
  url: string;
  server: ChildProcess;
  stop(): Promise<void>;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`audio-ident ${args[0]} exited with ${code}`))));
  });
}

/** `catalog`: 'embedded' (the default deployment) or 'server' (DATABASE_URL, else a throwaway cluster). */
export async function serveCorpus(catalog: string, corpus: CorpusTrack[]): Promise<Served> {
  // The exact lane's benches: the vibe model stays off unless the caller's environment names one.
  const env: NodeJS.ProcessEnv = { AUDIO_IDENT_VIBE_MODEL: 'off', ...process.env, AUDIO_IDENT_LOG_LEVEL: 'warn' };
  let stopPg: (() => void) | undefined;
  if (catalog === 'server' && !env.DATABASE_URL) {
    // @ts-expect-error -- a plain .mjs script without types
    const { startThrowawayPostgres } = await import('../../scripts/pg-throwaway.mjs');
    const pg = (await startThrowawayPostgres()) as { url: string; stop: () => void };
    env.DATABASE_URL = pg.url;
    stopPg = pg.stop;
  } else if (catalog === 'embedded') {
    delete env.DATABASE_URL;
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-bench-'));
  env.AUDIO_IDENT_DATA_DIR = dataDir;
  const cleanup = async () => {
    stopPg?.();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    console.error(`ingesting ${corpus.length} tracks into ${dataDir} (${catalog} catalog)`);
    await runCli(['ingest', ...corpus.map((t) => t.file)], env);
    const server = spawn(process.execPath, [CLI, 'serve'], { env: { ...env, PORT: '0', AUDIO_IDENT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      server.stderr!.on('data', (d) => {
        buf += d;
        const m = /"url":"([^"]+)"/.exec(buf);
        if (m) resolve(m[1]!);
      });
      server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${buf}`)));
    });
    return {
      url,
      server,
      stop: async () => {
        server.kill('SIGTERM');
        await new Promise((resolve) => server.once('exit', resolve));
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
