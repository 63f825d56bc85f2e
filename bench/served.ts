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
  /** The server's warn and error log lines since it started (the latest 200). */
  problems: string[];
  /** Resolves true once the server has logged a line with this `msg` (false after timeoutMs). */
  logged(msg: string, timeoutMs: number): Promise<boolean>;
  /** Stops the server and starts a fresh one on the same data dir, `env` added to its environment. */
  restart(env?: NodeJS.ProcessEnv): Promise<void>;
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
    const started = await startServer(env);
    const stopServer = async () => {
      const { server } = served;
      if (server.exitCode === null && server.signalCode === null) {
        const gone = new Promise((resolve) => server.once('exit', resolve));
        server.kill('SIGTERM');
        await gone;
      }
    };
    const served: Served = {
      ...started,
      restart: async (extra = {}) => {
        await stopServer();
        Object.assign(served, await startServer({ ...env, ...extra }));
      },
      stop: async () => {
        await stopServer();
        await cleanup();
      },
    };
    return served;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** `audio-ident serve` as its own process on an ephemeral port; resolves once it listens. */
async function startServer(env: NodeJS.ProcessEnv): Promise<Pick<Served, 'url' | 'server' | 'problems' | 'logged'>> {
  const server = spawn(process.execPath, [CLI, 'serve'], { env: { ...env, PORT: '0', AUDIO_IDENT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const problems: string[] = [];
  const seen = new Set<string>();
  const waiters = new Set<{ msg: string; done: (yes: boolean) => void }>();
  const logged = (msg: string, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (seen.has(msg)) return resolve(true);
      const w = {
        msg,
        done: (yes: boolean) => {
          waiters.delete(w);
          clearTimeout(timer);
          resolve(yes);
        },
      };
      const timer = setTimeout(() => w.done(false), timeoutMs);
      waiters.add(w);
    });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    let url: string | undefined;
    server.stderr!.on('data', (d) => {
      // Whole lines only, and only the server's complaints are kept: a long run logs without end.
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (!url) {
          const m = /"url":"([^"]+)"/.exec(line);
          if (m) {
            url = m[1]!;
            resolve(url);
          }
        }
        if (/"level":"(warn|error)"/.test(line)) problems.push(line.slice(0, 2000));
        const msg = /"msg":"([^"]*)"/.exec(line)?.[1];
        if (msg && !seen.has(msg)) {
          seen.add(msg);
          for (const w of waiters) if (w.msg === msg) w.done(true);
        }
      }
      problems.splice(0, problems.length - 200);
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${problems.join('\n')}${buf}`)));
  });
  return { url, server, problems, logged };
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

/** Resident memory of the server process alone (children not included), MB: the whole and its kinds. */
export function serverRss(pid: number): { rss: number; anon: number; file: number; shmem: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
}
