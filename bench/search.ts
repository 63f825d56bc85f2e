// Load benchmark of the clip-search endpoint (npm run bench:search [-- --catalog server]
// [-- --data-dir DIR: keep the ingested catalog there for the next run]).
// Ingests the full shared corpus with the CLI, starts `audio-ident serve` as its own process (the
// deployment users run), then keeps C requests in flight (closed loop) with 5 s and 10 s
// WebM/Opus clips, as browsers send them, and prints throughput and latency percentiles.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CACHE_DIR, CONDITIONS, fetchCorpus, makeClip, pool, rng, type CorpusTrack } from '../tools/corpus.js';
import { serveCorpus, serverUsage } from './served.js';
import { quantile } from './stats.js';

const { values } = parseArgs({
  options: {
    catalog: { type: 'string', default: 'embedded' },
    'data-dir': { type: 'string' },
    seconds: { type: 'string', default: '15' },
    concurrency: { type: 'string', default: '1,5,20' },
  },
});
const DURATION_S = Number(values.seconds);
const LEVELS = values.concurrency!.split(',').map(Number);

async function main() {
  const corpus = await fetchCorpus('full');
  const served = await serveCorpus(values.catalog!, corpus, values['data-dir']);
  try {
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

    const s = served;
    const lines = [
      `Catalog: ${corpus.length} tracks (${values.catalog} PostgreSQL); clips WebM/Opus 32 kbit/s; closed loop, ${DURATION_S} s per row; server and load ` +
        `generator share this ${os.availableParallelism()}-core machine.`,
      '',
      '| clip | concurrent requests | requests/s | p50 ms | p95 ms | p99 ms | server CPU ms per request | right track | errors |',
      '|---|---|---|---|---|---|---|---|---|',
    ];
    for (const len of [5, 10]) {
      for (const c of LEVELS) {
        const lat: number[] = [];
        let right = 0;
        let errors = 0;
        let i = 0;
        const until = performance.now() + DURATION_S * 1000;
        const t0 = performance.now();
        const cpu0 = serverUsage(s.server.pid!).cpu;
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
        // CPU per request, ffmpeg children included: what bounds throughput on a shared machine.
        const cpuMs = ((serverUsage(s.server.pid!).cpu - cpu0) * 1000) / lat.length;
        lines.push(
          `| ${len} s | ${c} | ${(lat.length / elapsed).toFixed(1)} | ${quantile(lat, 0.5).toFixed(0)} | ${quantile(lat, 0.95).toFixed(0)} | ` +
            `${quantile(lat, 0.99).toFixed(0)} | ${cpuMs.toFixed(1)} | ${right}/${lat.length} | ${errors} |`,
        );
        console.error(lines[lines.length - 1]);
      }
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  } finally {
    await served.stop();
  }
}

await main();
