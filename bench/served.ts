// A served catalog for the load benchmarks: tracks of the shared corpus ingested with the CLI,
// then `audio-ident serve` as its own process, the deployment users run.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CorpusTrack } from '../tools/corpus.js';

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

/**
 * `catalog`: 'embedded' (the default deployment) or 'server' (DATABASE_URL, else a throwaway
 * cluster). `keepDir` (embedded only): a data dir kept between runs, so that a repeated run's
 * ingest only skips what is already there.
 */
export async function serveCorpus(catalog: string, corpus: CorpusTrack[], keepDir?: string): Promise<Served> {
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
  if (keepDir && catalog !== 'embedded') throw new Error('a kept data dir needs the embedded catalog');
  const dataDir = keepDir ? path.resolve(keepDir) : await mkdtemp(path.join(os.tmpdir(), 'audio-ident-bench-'));
  env.AUDIO_IDENT_DATA_DIR = dataDir;
  const cleanup = async () => {
    stopPg?.();
    if (!keepDir) await rm(dataDir, { recursive: true, force: true });
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

/** Server CPU seconds (itself and its reaped children) and resident memory (with live children). */
export function serverUsage(pid: number): { cpu: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = [11, 12, 13, 14].reduce((a, i) => a + Number(stat[i]), 0); // utime stime cutime cstime
  const rss = (p: number) => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    } catch {
      return 0;
    }
  };
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* no children file */
  }
  return { cpu: ticks / 100, rssMb: rss(pid) + children.reduce((a, c) => a + rss(c), 0) };
}
