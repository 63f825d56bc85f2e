// Live-listening benchmark
// (npm run bench:stream [-- --levels 50,100,150,200] [-- --phases answers,capacity] [-- --catalog server]
// [-- --data-dir DIR: keep the ingested catalog there for the next run] [-- --mode both]
// [-- --catalog-tracks N: only the first N tracks of the catalog]
// [-- --conditions REGEX: the answers phase streams the accuracy bench's conditions whose names match,
// e.g. '^(speed|tempo) (0.97|1.03)$|^room RT60 1.0 s$'; by default its seven earlier ones]).
// The catalog is the full shared corpus minus the 30 tracks the accuracy bench keeps out. Listeners
// stream 12 s excerpts as WebM/Opus at real-time pace, in 250 ms slices as MediaRecorder sends them.
//  1. Answers: the seven earlier degradations of the accuracy bench (or those --conditions picks
//     from its whole sweep), 30 excerpts each, plus 40 excerpts of kept-out tracks; 30 listeners
//     at a time. Seconds of audio until the first correct answer (provisional or final) and until
//     the final one; wrong finals.
//  2. Capacity: N listeners at once for N in --levels: result lag (from sending the chunk whose
//     audio completed the decision to receiving the result), the server's event-loop delay, and
//     its CPU and memory per session (child processes included; live sessions start none).
//     With --mode both the sessions run the vibe lane too (the served catalog is embedded with
//     the configured model, MusiCNN by default), and the lag of its window results is reported
//     apart: a window's result lags from the chunk that completed the window's audio.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  ACCURACY_CONDITIONS,
  type BenchCondition,
  clipDir,
  CONDITIONS,
  fetchCorpus,
  keepOut,
  KEPT_OUT,
  makeClip,
  pool,
  rng,
  SPLIT_SEED,
  type CorpusTrack,
} from '../tools/corpus.js';
import { listen, results, type ListenResult } from '../tools/listen-client.js';
import { serveCorpus, serverUsage } from './served.js';
import { audioAfterChunks, lags } from './soak.js';
import { quantile } from './stats.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    catalog: { type: 'string', default: 'embedded' },
    'data-dir': { type: 'string' },
    levels: { type: 'string', default: '50,100,150,200' },
    excerpts: { type: 'string', default: '30' },
    phases: { type: 'string', default: 'answers,capacity' },
    mode: { type: 'string', default: 'exact' },
    'catalog-tracks': { type: 'string' },
    conditions: { type: 'string' },
  },
});
if (values.mode !== 'exact' && values.mode !== 'both') throw new Error('--mode is exact or both');
const mode = values.mode;
// The served catalog embeds its tracks only when a vibe model is configured.
if (mode === 'both') process.env.AUDIO_IDENT_VIBE_MODEL ??= 'musicnn';
const phases = new Set(values.phases!.split(','));
// The accuracy bench's conditions begin with the seven earlier ones.
const earlier = ACCURACY_CONDITIONS.slice(0, CONDITIONS.length);
const streamed = values.conditions ? ACCURACY_CONDITIONS.filter((c) => new RegExp(values.conditions!, 'i').test(c.name)) : earlier;
if (streamed.length === 0) throw new Error(`--conditions ${values.conditions} matches no condition (bench:accuracy --list names them)`);
if (streamed.length === 0) throw new Error(`--conditions ${values.conditions} matches no condition (bench:accuracy --list names them)`);
const CLIP_S = 12;
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

interface Query {
  condition: BenchCondition;
  /** The catalog track the excerpt comes from; null for kept-out material. */
  truth: CorpusTrack | null;
  src: CorpusTrack;
  start: number;
  file: string;
}

/** A degraded excerpt as the WebM/Opus a browser would send. */
async function webmClip(t: CorpusTrack, start: number, cond: BenchCondition): Promise<string> {
  const dir = clipDir('bench-stream', cond);
  const clip = await makeClip(t.file, path.join(dir, `${t.name}-${start.toFixed(2)}.${cond.ext}`), start, CLIP_S, cond);
  if (cond.ext === 'webm') return clip;
  const out = clip.replace(/\.\w+$/, '.live.webm');
  if (!existsSync(out)) await run('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-c:a', 'libopus', '-b:a', '32k', out]);
  return out;
}

async function scrape(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(audio_ident_event_loop_delay_\w+|audio_ident_listen_\w+) (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function main() {
  const split = keepOut(await fetchCorpus('full'), KEPT_OUT, rng(SPLIT_SEED));
  const keptOut = split.keptOut;
  const catalog = values['catalog-tracks'] ? split.catalog.slice(0, Number(values['catalog-tracks'])) : split.catalog;
  // Every listener comes from 127.0.0.1: without these the per-address cap (20) and the session
  // cap (200) would refuse the capacity phase's listeners.
  const most = String(Math.max(200, ...values.levels!.split(',').map(Number)) + 10);
  process.env.AUDIO_IDENT_MAX_SESSIONS ??= most;
  process.env.AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS ??= most;
  const served = await serveCorpus(values.catalog!, catalog, values['data-dir']);
  try {
    const wsUrl = `${served.url.replace('http', 'ws')}/api/v1/listen`;
    const r = rng(424242);
    const n = Number(values.excerpts);
    const queries: Query[] = [];
    const pickFrom = (ts: CorpusTrack[]) => {
      const t = ts[Math.floor(r() * ts.length)]!;
      return { t, start: r() * (t.duration - CLIP_S - 1) };
    };
    const excerpts = Array.from({ length: n }, () => pickFrom(catalog));
    for (const cond of streamed) for (const e of excerpts) queries.push({ condition: cond, truth: e.t, src: e.t, start: e.start, file: '' });
    for (const cond of earlier.slice(0, 2))
      for (let i = 0; i < 20; i++) {
        const e = pickFrom(keptOut);
        queries.push({ condition: cond, truth: null, src: e.t, start: e.start, file: '' });
      }
    let made = 0;
    await pool(queries, os.availableParallelism(), async (q) => {
      q.file = await webmClip(q.src, q.start, q.condition);
      if (++made % 50 === 0) console.error(`clips ${made}/${queries.length}`);
    });

    // 1. Answers.
    const outcome = new Map<Query, ListenResult>();
    let done = 0;
    await pool(phases.has('answers') ? queries : [], 30, async (q) => {
      outcome.set(q, await listen(wsUrl, { start: { type: 'start', format: 'webm-opus', mode }, audio: await readFile(q.file), seconds: CLIP_S }));
      if (++done % 30 === 0) console.error(`sessions ${done}/${queries.length}`);
    });
    const lines = [
      `Catalog: ${catalog.length} tracks (${values.catalog} PostgreSQL); sessions in mode ${mode}; ${CLIP_S} s excerpts streamed as WebM/Opus 32 kbit/s ` +
        `in 250 ms slices at real-time pace; 30 listeners at a time.`,
      '',
      '| condition | answered right (final) | first right answer: median / p90 s of audio | right final: median / p90 s | wrong finals |',
      '|---|---|---|---|---|',
    ];
    const label = (q: Query) => (q.truth ? q.condition.name : `${q.condition.name} (not in catalog)`);
    for (const cond of phases.has('answers') ? [...new Set(queries.map(label))] : []) {
      const qs = queries.filter((q) => label(q) === cond);
      const first: number[] = [];
      const final: number[] = [];
      let wrong = 0;
      for (const q of qs) {
        const rs = results(outcome.get(q)!).filter((x) => x.lane === 'exact');
        const right = (x: (typeof rs)[number]) =>
          q.truth !== null && x.matches[0]?.track.file_name === q.truth.name && Math.abs(x.matches[0]!.offset_seconds - q.start) <= 1;
        const f = rs.find(right);
        if (f) first.push(f.heard_seconds);
        const fin = rs.find((x) => x.status === 'final');
        if (fin && right(fin)) final.push(fin.heard_seconds);
        if (rs.some((x) => x.status === 'final' && !(q.truth && x.matches[0]?.track.file_name === q.truth.name))) wrong++;
      }
      lines.push(
        `| ${cond} | ${qs[0]!.truth ? `${final.length}/${qs.length}` : '-'} | ` +
          `${qs[0]!.truth ? `${fmt(quantile(first, 0.5))} / ${fmt(quantile(first, 0.9))}` : '-'} | ` +
          `${qs[0]!.truth ? `${fmt(quantile(final, 0.5))} / ${fmt(quantile(final, 0.9))}` : '-'} | ${wrong} / ${qs.length} |`,
      );
    }
    console.error(lines.join('\n'));

    // 2. Capacity.
    const pid = served.server.pid!;
    const vibeColumn = mode === 'both' ? ' vibe window results per session / lag p50 / p95 ms |' : '';
    lines.push(
      '',
      `| listeners at once | sessions ended normally | result lag p50 / p95 / p99 ms |${vibeColumn} event-loop delay p50 / p99 / max ms | ` +
        `server CPU per listener (share of a core at real time) | server memory per session |`,
      `|---|---|---|${vibeColumn ? '---|' : ''}---|---|---|`,
    );
    const mixed = queries.filter((q) => q.truth);
    const payloads = await Promise.all(mixed.map((q) => readFile(q.file)));
    const audioAfter = await Promise.all(payloads.map(audioAfterChunks));
    for (const level of phases.has('capacity') ? values.levels!.split(',').map(Number) : []) {
      const before = serverUsage(pid);
      let peakRss = 0;
      let loop: Record<string, number> = {};
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, serverUsage(pid).rssMb);
      }, 1000);
      // Scrape the event-loop window that covers the steady middle of the level.
      const probe = setTimeout(() => void scrape(served.url).then((m) => (loop = m)), 11_500);
      const runs = await Promise.all(
        Array.from({ length: level }, async (_, i) => {
          await new Promise((res) => setTimeout(res, (2000 * i) / level)); // staggered over 2 s
          return listen(wsUrl, { start: { type: 'start', format: 'webm-opus', mode }, audio: payloads[i % payloads.length]!, seconds: CLIP_S });
        }),
      );
      clearInterval(sampler);
      clearTimeout(probe);
      const after = serverUsage(pid);
      const all = runs.flatMap((x, i) => lags(x, audioAfter[i % payloads.length]!, 'exact'));
      const vibe = runs.flatMap((x, i) => lags(x, audioAfter[i % payloads.length]!, 'vibe'));
      const vibeCell = mode === 'both' ? ` ${fmt(vibe.length / level, 1)} / ${fmt(quantile(vibe, 0.5), 0)} / ${fmt(quantile(vibe, 0.95), 0)} |` : '';
      const ok = runs.filter((x) => x.code === 1000).length;
      // CPU over the audio streamed, not over the wall time: a server that falls behind on a shared
      // machine stretches the wall time, not the work.
      const cpuShare = (after.cpu - before.cpu) / (level * CLIP_S);
      lines.push(
        `| ${level} | ${ok}/${level} | ${fmt(quantile(all, 0.5), 0)} / ${fmt(quantile(all, 0.95), 0)} / ${fmt(quantile(all, 0.99), 0)} |${vibeCell} ` +
          `${fmt((loop.audio_ident_event_loop_delay_p50_seconds ?? NaN) * 1000, 0)} / ` +
          `${fmt((loop.audio_ident_event_loop_delay_p99_seconds ?? NaN) * 1000, 0)} / ` +
          `${fmt((loop.audio_ident_event_loop_delay_max_seconds ?? NaN) * 1000, 0)} | ${fmt(cpuShare * 100, 2)}% of a core | ` +
          `${fmt((peakRss - before.rssMb) / level, 1)} MB |`,
      );
      console.error(lines.at(-1));
      await new Promise((res) => setTimeout(res, 3000));
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  } finally {
    await served.stop();
  }
}

await main();
