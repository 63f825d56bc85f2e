// Live-listening soak: how sessions end under load, and whether the server gives its memory back
// (node dist/bench/soak.js [--levels 150,300] [--rounds 3] [--tail 300] [--data-dir DIR]
// [--catalog-excerpts 60] [--kept-out-excerpts 20] [--server-env K=V,K=V] [--trace FILE]).
// The catalog is the full shared corpus minus the 30 tracks the accuracy bench keeps out. For each
// level N, on a freshly started server:
//  1. Warm-up: one catalog and one kept-out session, then 5 s idle; the server's resident memory
//     then is the level's start.
//  2. Load: N listeners at once (staggered over 2 s), each streaming --rounds sessions back to
//     back, each session a 12 s WebM/Opus 32 kbit/s excerpt in 250 ms slices at real-time pace,
//     then `stop`, then waiting for the close. One listener in five streams a kept-out excerpt.
//  3. Idle tail: the server idles for --tail seconds; its memory at 1, 2 and 5 minutes after the
//     last session closed.
// A session ends right when a catalog excerpt gets a final naming its track and no other, or a
// kept-out one gets no_match, and then the close 1000. Ended wrong: a final naming another track.
// Error: any other close code (by code; with the error message's code when one came). Without
// answer: a 1000 close with neither a final nor no_match. A catalog excerpt that ends with
// no_match is counted apart (a miss, which happens unloaded too: silence, a looped passage).
// Stop to close: from sending `stop` to the close event. Result lag: from sending the chunk whose
// audio completed a result (or no_match) to receiving it, as bench/stream.ts measures it.
// Memory is the server process's own VmRSS (/proc/PID/status), split into anonymous and
// file-backed pages (the LMDB index is memory-mapped: pages of it that lookups touched stay
// resident as file pages, which the kernel may drop at will).
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { SAMPLE_RATE } from '../src/audio/decode.js';
import { OpusPcmStream } from '../src/audio/opus/opus-decode.js';
import { CACHE_DIR, CONDITIONS, fetchCorpus, keepOut, KEPT_OUT, makeClip, pool, rng, SPLIT_SEED, type CorpusTrack } from '../tools/corpus.js';
import { chunkBytes, listen, results, type ListenResult } from '../tools/listen-client.js';
import { serveCorpus, serverRss, serverUsage } from './served.js';
import { quantile } from './stats.js';

export const CLIP_S = 12;

/**
 * Seconds of audio the server can have decoded once each chunk of `audio` (as `listen` cuts it)
 * has arrived: the same demultiplexer and decoder as a session, so that a result's heard_seconds
 * maps to the chunk that completed it, whatever the container overhead and Opus frame edges.
 */
export async function audioAfterChunks(audio: Buffer, seconds = CLIP_S): Promise<number[]> {
  const per = chunkBytes({ audio, seconds });
  const s = await OpusPcmStream.open('webm');
  const out: number[] = [];
  let samples = 0;
  for (let at = 0; at < audio.length; at += per) {
    samples += s.push(audio.subarray(at, at + per)).length;
    out.push(samples / SAMPLE_RATE);
  }
  s.free();
  return out;
}

/** Lag of each result of a lane: receive time minus the send time of the chunk that completed its audio. */
export function lags(r: ListenResult, audioAfter: number[], lane: 'exact' | 'vibe'): number[] {
  return r.received
    .filter((x) => (x.msg.type === 'result' && x.msg.lane === lane) || (lane === 'exact' && x.msg.type === 'no_match'))
    .map((x) => {
      const heard = x.msg.heard_seconds as number;
      const k = audioAfter.findIndex((s) => s >= heard - 0.005);
      const chunk = Math.min(r.sentAt.length - 1, k < 0 ? audioAfter.length - 1 : k);
      return Math.max(0, x.at - r.sentAt[chunk]!);
    });
}

interface Excerpt {
  /** The catalog track it comes from; null for a kept-out track. */
  truth: CorpusTrack | null;
  src: CorpusTrack;
  start: number;
  audio: Buffer;
  audioAfter: number[];
}

type Outcome = 'right' | 'missed' | 'wrong' | 'error' | 'unanswered';

interface Session {
  ex: Excerpt;
  outcome: Outcome;
  /** Close code, with the error message's code when one came: "4408 IDLE_TIMEOUT". */
  closed: string;
  /** ms from sending stop to the close; undefined when the server closed first. */
  stopToClose?: number;
  lags: number[];
}

/** One session as a browser runs it, with the time of its stop and of its close. */
async function session(wsUrl: string, ex: Excerpt): Promise<Session> {
  let stopAt: number | undefined;
  let r: ListenResult;
  try {
    r = await listen(wsUrl, {
      start: { type: 'start', format: 'webm-opus', mode: 'exact' },
      audio: ex.audio,
      seconds: CLIP_S,
      onOpen: (ws: WebSocket) => {
        const send = ws.send.bind(ws) as (data: unknown, ...rest: unknown[]) => void;
        (ws as { send: unknown }).send = (data: unknown, ...rest: unknown[]) => {
          if (typeof data === 'string' && data.includes('"stop"')) stopAt = performance.now();
          send(data, ...rest);
        };
      },
    });
  } catch (e) {
    return { ex, outcome: 'error', closed: `client error ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, lags: [] };
  }
  const closedAt = performance.now();
  const error = r.received.find((x) => x.msg.type === 'error')?.msg.code as string | undefined;
  const finals = results(r).filter((x) => x.lane === 'exact' && x.status === 'final');
  const noMatch = r.received.some((x) => x.msg.type === 'no_match');
  const wrong = finals.some((f) => !ex.truth || f.matches[0]?.track.file_name !== ex.truth.name);
  const outcome: Outcome = r.code !== 1000 ? 'error' : wrong ? 'wrong' : finals.length ? 'right' : noMatch ? (ex.truth ? 'missed' : 'right') : 'unanswered';
  return {
    ex,
    outcome,
    closed: `${r.code}${error ? ` ${error}` : ''}`,
    ...(stopAt !== undefined && r.code === 1000 ? { stopToClose: closedAt - stopAt } : {}),
    lags: lags(r, ex.audioAfter, 'exact'),
  };
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main() {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      levels: { type: 'string', default: '150,300' },
      rounds: { type: 'string', default: '3' },
      tail: { type: 'string', default: '300' },
      'catalog-excerpts': { type: 'string', default: '60' },
      'kept-out-excerpts': { type: 'string', default: '20' },
      'server-env': { type: 'string', default: '' },
      trace: { type: 'string' },
    },
  });
  const levels = values.levels!.split(',').map(Number);
  const rounds = Number(values.rounds);
  const tailS = Number(values.tail);
  // Every listener comes from 127.0.0.1: the per-address cap (20) would refuse all but the first
  // ones, and the session cap (200) the ceiling's.
  const most = String(Math.max(...levels) + 10);
  const serverEnv: NodeJS.ProcessEnv = { AUDIO_IDENT_MAX_SESSIONS: most, AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS: most };
  for (const kv of values['server-env']!.split(',').filter(Boolean)) {
    const eq = kv.indexOf('=');
    serverEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }

  const split = keepOut(await fetchCorpus('full'), KEPT_OUT, rng(SPLIT_SEED));
  const r = rng(515151);
  const opus = CONDITIONS.find((c) => c.ext === 'webm')!;
  const pick = (ts: CorpusTrack[], truth: boolean, n: number) =>
    Array.from({ length: n }, () => {
      const t = ts[Math.floor(r() * ts.length)]!;
      return { t, start: r() * (t.duration - CLIP_S - 1), truth };
    });
  const picks = [...pick(split.catalog, true, Number(values['catalog-excerpts'])), ...pick(split.keptOut, false, Number(values['kept-out-excerpts']))];
  const excerpts: Excerpt[] = [];
  await pool(picks, os.availableParallelism(), async (p) => {
    const file = await makeClip(p.t.file, path.join(CACHE_DIR, 'bench-soak', `${p.t.name}-${p.start.toFixed(2)}.webm`), p.start, CLIP_S, opus);
    const audio = await readFile(file);
    excerpts.push({ truth: p.truth ? p.t : null, src: p.t, start: p.start, audio, audioAfter: await audioAfterChunks(audio) });
  });
  excerpts.sort((a, b) => a.src.name.localeCompare(b.src.name) || a.start - b.start);
  const inCatalog = excerpts.filter((e) => e.truth);
  const outside = excerpts.filter((e) => !e.truth);

  const served = await serveCorpus('embedded', split.catalog, values['data-dir']);
  const trace: unknown[] = [];
  const lines = [
    `Catalog: ${split.catalog.length} tracks (embedded); ${CLIP_S} s WebM/Opus 32 kbit/s excerpts (${inCatalog.length} of catalog tracks, ` +
      `${outside.length} of kept-out ones, one listener in five) in 250 ms slices at real-time pace, then stop; ${rounds} sessions back to back ` +
      `per listener; server env ${JSON.stringify(serverEnv)}; ${os.availableParallelism()} cores, load generator in the bench process.`,
    '',
    '| listeners at once | sessions | ended right: catalog / kept out | catalog no_match | ended wrong | error closes (by code) | without answer | ' +
      'stop to close p50 / p95 / max ms | result lag p50 / p95 / p99 ms | server CPU per listener |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const memLines = [
    '',
    '| listeners at once | server RSS MB: start | peak during | +1 min | +2 min | +5 min | +5 min vs start | anon MB: start / peak / +5 min | file-backed MB: start / peak / +5 min |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  try {
    for (const level of levels) {
      await served.restart(serverEnv);
      const pid = served.server.pid!;
      // The server reads its whole index once in a child process after it starts: the load waits for it.
      if (!(await served.logged('read the whole fingerprint index', 120_000))) console.error('the index scan did not finish within 120 s');
      const wsUrl = `${served.url.replace('http', 'ws')}/api/v1/listen`;
      const t0 = performance.now();
      const samples: { t: number; phase: string; rss: number; anon: number; file: number }[] = [];
      let phase = 'warm-up';
      const sample = () => {
        try {
          samples.push({ t: (performance.now() - t0) / 1000, phase, ...serverRss(pid) });
        } catch {
          /* the server is gone: its absence shows in the sessions */
        }
      };
      const sampler = setInterval(sample, 1000);
      await Promise.all([session(wsUrl, inCatalog[0]!), session(wsUrl, outside[0]!)]);
      await sleep(5000);
      sample();
      const start = samples.at(-1)!;
      phase = 'load';
      const cpu0 = serverUsage(pid).cpu;
      const sessions = (
        await Promise.all(
          Array.from({ length: level }, async (_, i) => {
            await sleep((2000 * i) / level);
            const out: Session[] = [];
            for (let k = 0; k < rounds; k++) {
              const j = i * rounds + k;
              const ex = i % 5 === 4 ? outside[j % outside.length]! : inCatalog[j % inCatalog.length]!;
              out.push(await session(wsUrl, ex));
            }
            return out;
          }),
        )
      ).flat();
      const cpu = serverUsage(pid).cpu - cpu0;
      phase = 'tail';
      sample();
      const loadEnd = samples.at(-1)!;
      const peak = samples.filter((s) => s.phase === 'load').reduce((a, b) => (b.rss > a.rss ? b : a), loadEnd);
      const peakAnon = Math.max(...samples.filter((s) => s.phase !== 'warm-up').map((s) => s.anon));
      const peakFile = Math.max(...samples.filter((s) => s.phase !== 'warm-up').map((s) => s.file));
      const tailAt: Record<number, (typeof samples)[number] | undefined> = {};
      for (const m of [60, 120, 300]) {
        if (m > tailS) break;
        await sleep(loadEnd.t * 1000 + m * 1000 - (performance.now() - t0));
        sample();
        tailAt[m] = samples.at(-1);
        console.error(`level ${level}: +${m} s idle: RSS ${fmt(tailAt[m]!.rss)} MB (start ${fmt(start.rss)})`);
      }
      if (tailS > 300) await sleep(loadEnd.t * 1000 + tailS * 1000 - (performance.now() - t0));
      clearInterval(sampler);

      const count = (o: Outcome, truth?: boolean) => sessions.filter((s) => s.outcome === o && (truth === undefined || !!s.ex.truth === truth)).length;
      const codes = new Map<string, number>();
      for (const s of sessions) if (s.outcome === 'error') codes.set(s.closed, (codes.get(s.closed) ?? 0) + 1);
      const stops = sessions.flatMap((s) => (s.stopToClose === undefined ? [] : [s.stopToClose]));
      const allLags = sessions.flatMap((s) => s.lags);
      const nCat = sessions.filter((s) => s.ex.truth).length;
      const last = tailAt[300] ?? tailAt[120] ?? tailAt[60];
      lines.push(
        `| ${level} | ${sessions.length} | ${count('right', true)}/${nCat} / ${count('right', false)}/${sessions.length - nCat} | ${count('missed')} | ` +
          `${count('wrong')} | ${codes.size ? [...codes].map(([c, n]) => `${n} x ${c}`).join(', ') : '0'} | ${count('unanswered')} | ` +
          `${fmt(quantile(stops, 0.5))} / ${fmt(quantile(stops, 0.95))} / ${fmt(Math.max(...stops))} | ` +
          `${fmt(quantile(allLags, 0.5))} / ${fmt(quantile(allLags, 0.95))} / ${fmt(quantile(allLags, 0.99))} | ` +
          `${fmt((100 * cpu) / (sessions.length * CLIP_S), 2)}% of a core |`,
      );
      memLines.push(
        `| ${level} | ${fmt(start.rss)} | ${fmt(peak.rss)} | ${fmt(tailAt[60]?.rss ?? NaN)} | ${fmt(tailAt[120]?.rss ?? NaN)} | ${fmt(tailAt[300]?.rss ?? NaN)} | ` +
          `${last ? `${last.rss >= start.rss ? '+' : ''}${fmt((100 * (last.rss - start.rss)) / start.rss, 1)}%` : '-'} | ` +
          `${fmt(start.anon)} / ${fmt(peakAnon)} / ${fmt(tailAt[300]?.anon ?? NaN)} | ${fmt(start.file)} / ${fmt(peakFile)} / ${fmt(tailAt[300]?.file ?? NaN)} |`,
      );
      console.error(lines.at(-1));
      console.error(memLines.at(-1));
      if (served.problems.length) console.error(`server warnings and errors (${served.problems.length}):\n${served.problems.slice(-10).join('\n')}`);
      trace.push({ level, serverEnv, samples, loadSeconds: loadEnd.t - start.t, problems: served.problems.slice() });
    }
    process.stdout.write(`\n${[...lines, ...memLines].join('\n')}\n`);
    if (values.trace) await writeFile(values.trace, JSON.stringify(trace));
  } finally {
    await served.stop();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
