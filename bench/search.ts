// Load benchmark of the clip-search endpoint (npm run bench:search [-- --catalog server]).
// Ingests the full shared corpus with the CLI, starts `audio-ident serve` as its own process (the
// deployment users run), then keeps C requests in flight (closed loop) with 5 s and 10 s
// WebM/Opus clips, as browsers send them, and prints throughput and latency percentiles.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CACHE_DIR, CONDITIONS, fetchCorpus, makeClip, pool, rng, type CorpusTrack } from '../test/corpus.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const { values } = parseArgs({
  options: {
    catalog: { type: 'string', default: 'embedded' },
    seconds: { type: 'string', default: '15' },
    concurrency: { type: 'string', default: '1,5,20' },
  },
});
const DURATION_S = Number(values.seconds);
const LEVELS = values.concurrency!.split(',').map(Number);

const quantile = (a: number[], q: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`audio-ident ${args[0]} exited with ${code}`))));
  });
}

async function startServer(env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { ...env, PORT: '0', AUDIO_IDENT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (d) => {
      buf += d;
      const m = /"url":"([^"]+)"/.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${buf}`)));
  });
  return { url, child };
}

async function main() {
  const corpus = await fetchCorpus('full');
  const env: NodeJS.ProcessEnv = { ...process.env, AUDIO_IDENT_LOG_LEVEL: 'warn' };
  let stopPg: (() => void) | undefined;
  if (values.catalog === 'server' && !env.DATABASE_URL) {
    // @ts-expect-error -- a plain .mjs script without types
    const { startThrowawayPostgres } = await import('../../scripts/pg-throwaway.mjs');
    const pg = (await startThrowawayPostgres()) as { url: string; stop: () => void };
    env.DATABASE_URL = pg.url;
    stopPg = pg.stop;
  } else if (values.catalog === 'embedded') {
    delete env.DATABASE_URL;
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-bench-search-'));
  env.AUDIO_IDENT_DATA_DIR = dataDir;
  let server: ChildProcess | undefined;
  try {
    console.error(`ingesting ${corpus.length} tracks into ${dataDir} (${values.catalog} catalog)`);
    await runCli(['ingest', ...corpus.map((t) => t.file)], env);

    const opus = CONDITIONS.find((c) => c.name === 'Opus 32k WebM')!;
    const r = rng(7);
    const clips: Record<number, { file: string; truth: CorpusTrack; data: Buffer }[]> = { 5: [], 10: [] };
    for (const len of [5, 10]) {
      const picks = Array.from({ length: 40 }, () => {
        const t = corpus[Math.floor(r() * corpus.length)]!;
        return { t, start: r() * (t.duration - len - 1) };
      });
      await pool(picks, 2, async ({ t, start }) => {
        const file = path.join(CACHE_DIR, 'bench-search', `${len}s`, `${t.name}-${start.toFixed(2)}.webm`);
        await makeClip(t.file, file, start, len, opus);
        clips[len]!.push({ file, truth: t, data: await readFile(file) });
      });
    }

    const s = await startServer(env);
    server = s.child;
    const lines = [
      `Catalog: ${corpus.length} tracks (${values.catalog} PostgreSQL); clips WebM/Opus 32 kbit/s; closed loop, ${DURATION_S} s per row; server and load generator share this ${os.availableParallelism()}-core machine.`,
      '',
      '| clip | concurrent requests | requests/s | p50 ms | p95 ms | p99 ms | right track | errors |',
      '|---|---|---|---|---|---|---|---|',
    ];
    for (const len of [5, 10]) {
      for (const c of LEVELS) {
        const lat: number[] = [];
        let right = 0;
        let errors = 0;
        let i = 0;
        const until = performance.now() + DURATION_S * 1000;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: c }, async () => {
            while (performance.now() < until) {
              const q = clips[len]![i++ % clips[len]!.length]!;
              const form = new FormData();
              form.append('audio', new Blob([new Uint8Array(q.data)]), path.basename(q.file));
              form.append('mode', 'exact');
              const start = performance.now();
              const res = await fetch(`${s.url}/api/v1/search`, { method: 'POST', body: form });
              const body = (await res.json()) as { exact_matches?: { track: { file_name: string } }[] };
              lat.push(performance.now() - start);
              if (!res.ok) errors++;
              else if (body.exact_matches?.[0]?.track.file_name === q.truth.name) right++;
            }
          }),
        );
        const elapsed = (performance.now() - t0) / 1000;
        lines.push(`| ${len} s | ${c} | ${(lat.length / elapsed).toFixed(1)} | ${quantile(lat, 0.5).toFixed(0)} | ${quantile(lat, 0.95).toFixed(0)} | ${quantile(lat, 0.99).toFixed(0)} | ${right}/${lat.length} | ${errors} |`);
        console.error(lines[lines.length - 1]);
      }
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  } finally {
    server?.kill('SIGTERM');
    if (server) await new Promise((resolve) => server!.once('exit', resolve));
    stopPg?.();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
