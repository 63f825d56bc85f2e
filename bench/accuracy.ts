// Accuracy benchmark of the exact lane (npm run bench:accuracy [-- --scale 10]).
// Indexes the full shared corpus minus 30 tracks kept out as non-catalog material, then
// identifies 5 s excerpts under the degradations of tools/corpus.ts: 2 per indexed track, and
// 200 from the kept-out tracks as negatives; then, as a wider test of false positives, every 5 s
// excerpt of the kept-out tracks, 2.5 s apart, clean. Prints Markdown tables.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { rm, mkdtemp } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/base/config.js';
import { setLogLevel } from '../src/base/log.js';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { Engine } from '../src/engine/engine.js';
import { fingerprint } from '../src/exact/fingerprint.js';
import { changeSpeed } from '../src/audio/speed.js';
import { DEFAULT_MATCHER } from '../src/exact/matcher.js';
import { ProgressBar } from '../src/cli/progress.js';
import { CACHE_DIR, CONDITIONS, fetchCorpus, keepOut, KEPT_OUT, makeClip, pool, rng, SPLIT_SEED, type CorpusTrack } from '../tools/corpus.js';
import { extractionSpeeds } from './extraction.js';
import { median, quantile } from './stats.js';

const CLIP_SECONDS = 5;
const NEGATIVES = 200;
const OFFSET_TOLERANCE = 0.5;

const { values } = parseArgs({ options: { scale: { type: 'string', default: '1' } } });
const scale = Number(values.scale);
setLogLevel('warn');

interface Query {
  condition: string;
  file: string;
  truth: CorpusTrack | null;
  start: number;
}
interface Scored {
  q: Query;
  aligned: number; // of the best candidate (0 when none)
  ber: number; // its sketch's bit error rate (1 when none)
  correct: boolean; // best candidate is the right track at the right offset
  repeat: boolean; // ... counted right because the track repeats the excerpt's audio at the offset given
  rightTrack: boolean; // best candidate is the right track (a looped passage may recur at another offset)
  cpuMs: number;
}

async function main() {
  const corpus = await fetchCorpus('full');
  const r = rng(SPLIT_SEED);
  const split = keepOut(corpus, KEPT_OUT, r);
  const keptOut = split.keptOut;
  const catalog = split.catalog.sort((a, b) => a.name.localeCompare(b.name));

  // Excerpt positions are drawn once; each condition degrades the same excerpts.
  const excerpts: { truth: CorpusTrack | null; src: CorpusTrack; start: number }[] = [];
  for (const t of catalog) for (let i = 0; i < 2; i++) excerpts.push({ truth: t, src: t, start: r() * (t.duration - CLIP_SECONDS - 0.5) });
  for (let i = 0; i < NEGATIVES; i++) {
    const t = keptOut[Math.floor(r() * keptOut.length)]!;
    excerpts.push({ truth: null, src: t, start: r() * (t.duration - CLIP_SECONDS - 0.5) });
  }
  const queries: (Query & { src: string })[] = [];
  for (const c of CONDITIONS) {
    const dir = path.join(CACHE_DIR, 'bench-queries', c.name.replace(/[^a-z0-9]+/gi, '_'));
    excerpts.forEach((e, i) => queries.push({ condition: c.name, truth: e.truth, start: e.start, src: e.src.file, file: path.join(dir, `${i}.${c.ext}`) }));
  }
  const gen = new ProgressBar('queries');
  let made = 0;
  await pool(queries, os.availableParallelism(), async (q) => {
    const c = CONDITIONS.find((x) => x.name === q.condition)!;
    await makeClip(q.src, q.file, q.start, CLIP_SECONDS, c);
    gen.update(++made, queries.length, 'clips (cached after the first run)');
  });

  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-bench-'));
  // Candidates at any bit error rate are kept so that the acceptance can be calibrated below;
  // retries at other speeds follow the production acceptance.
  const engine = await Engine.open(loadConfig(process.env, { dataDir }), { matcher: { ...DEFAULT_MATCHER, maxBitErrorRate: 0.5 } });
  try {
    const bar = new ProgressBar('ingest');
    const ing = await engine.ingest(
      catalog.map((t) => t.file),
      (p) => bar.update(p.done, p.total, `${(p.audioSeconds / 3600).toFixed(2)} h`),
    );
    if (ing.failed) throw new Error(`${ing.failed} catalog files failed to ingest`);
    const st = engine.stats();
    const hours = ing.audioSeconds / 3600;

    // Extraction speed on one core, decode excluded.
    const speeds = extractionSpeeds(await Promise.all(catalog.slice(0, 6).map((t) => decodeFile(t.file))), 'index', 5);

    const byName = new Map(catalog.map((t) => [t.file, t] as const));
    const identify = async (q: Query, pcm: Float32Array): Promise<Scored> => {
      const c0 = process.cpuUsage();
      const matches = await engine.identify(pcm, 1);
      const c1 = process.cpuUsage(c0);
      const top = matches[0];
      const truthFile = q.truth ? byName.get(q.truth.file) : undefined;
      const rightTrack = !!top && !!truthFile && top.track.file_name === path.basename(truthFile.file);
      const near = rightTrack && Math.abs(top.offsetSeconds - q.start) <= OFFSET_TOLERANCE;
      const repeat = rightTrack && !near && (await sameAudio(truthFile!.file, q.start, top.offsetSeconds));
      return {
        q,
        aligned: top?.alignedHashes ?? 0,
        ber: top?.bitErrorRate ?? 1,
        correct: near || repeat,
        repeat,
        rightTrack,
        cpuMs: (c1.user + c1.system) / 1000,
      };
    };
    const pb = new ProgressBar('identify');
    const scored: Scored[] = new Array(queries.length);
    let done = 0;
    await pool(queries, 2, async (q, i) => {
      scored[i] = await identify(q, await decodeFile(q.file));
      pb.update(++done, queries.length, '');
    });

    // The wider negatives: every 5 s excerpt of the kept-out tracks, 2.5 s apart, clean.
    const wide: Scored[] = [];
    const wb = new ProgressBar('kept-out excerpts');
    for (const [k, t] of keptOut.entries()) {
      const pcm = await decodeFile(t.file);
      for (let at = 0; at + CLIP_SECONDS * SAMPLE_RATE <= pcm.length; at += (CLIP_SECONDS / 2) * SAMPLE_RATE) {
        wide.push(
          await identify({ condition: 'clean', file: t.file, truth: null, start: at / SAMPLE_RATE }, pcm.subarray(at, at + CLIP_SECONDS * SAMPLE_RATE)),
        );
      }
      wb.update(k + 1, keptOut.length, `${wide.length} excerpts`);
    }

    // Acceptance sweep: at each bit error rate, answers that name a wrong track (false positives
    // on negatives, wrong tracks on positives; the right track at a recurring passage is neither).
    const A = DEFAULT_MATCHER.minAligned;
    const B = DEFAULT_MATCHER.maxBitErrorRate;
    const accepted = (s: Scored, ber = B, aligned = A) => s.aligned >= aligned && s.ber <= ber;
    const wrongAt = (ber: number, aligned = A) => [...scored, ...wide].filter((s) => accepted(s, ber, aligned) && !s.rightTrack).length;
    const closestWrong = Math.min(...[...scored, ...wide].filter((s) => s.aligned >= A && !s.rightTrack).map((s) => s.ber));
    const lines: string[] = [];
    lines.push(
      `Catalog: ${catalog.length} tracks, ${hours.toFixed(2)} h; ${KEPT_OUT} tracks kept out; ${CLIP_SECONDS} s clips; acceptance: at least ${A} distinct ` +
        `aligned hashes and a sketch bit error rate of at most ${B} (lowest bit error rate of an answer naming a wrong track here: ` +
        `${closestWrong.toFixed(3)}).`,
    );
    lines.push('');
    lines.push('| condition | top-1 accuracy | of which at a repeat | wrong answers (positives) | false positives (negatives) |');
    lines.push('|---|---|---|---|---|');
    for (const c of CONDITIONS) {
      const s = scored.filter((x) => x.q.condition === c.name);
      const pos = s.filter((x) => x.q.truth);
      const neg = s.filter((x) => !x.q.truth);
      const acc = pos.filter((x) => x.correct && accepted(x)).length / pos.length;
      lines.push(
        `| ${c.name} | ${(100 * acc).toFixed(1)}% (${pos.length}) | ${pos.filter((x) => x.repeat && accepted(x)).length} | ` +
          `${pos.filter((x) => !x.correct && accepted(x)).length} | ${neg.filter((x) => accepted(x)).length} / ${neg.length} |`,
      );
    }
    lines.push(`| every 5 s excerpt of the kept-out tracks, 2.5 s apart, clean | - | - | - | ${wide.filter((x) => accepted(x)).length} / ${wide.length} |`);
    const cpu = scored.map((s) => s.cpuMs);
    // Clips that match nothing at their own speed are tried at others: they cost more.
    const answered = scored.filter((s) => accepted(s)).map((s) => s.cpuMs);
    const unanswered = scored.filter((s) => !accepted(s)).map((s) => s.cpuMs);
    lines.push('');
    lines.push('| figure | value |');
    lines.push('|---|---|');
    lines.push(`| query CPU per 5 s clip, decode excluded (median / p95) | ${median(cpu).toFixed(1)} ms / ${quantile(cpu, 0.95).toFixed(1)} ms |`);
    lines.push(
      `| ... of clips answered / not answered (median / p95) | ${median(answered).toFixed(1)} / ${quantile(answered, 0.95).toFixed(1)} ms; ` +
        `${median(unanswered).toFixed(1)} / ${quantile(unanswered, 0.95).toFixed(1)} ms |`,
    );
    lines.push(
      `| index size | ${(st.bytes / 2 ** 20).toFixed(1)} MB = ${(st.bytes / 2 ** 20 / hours).toFixed(2)} MB per hour ` +
        `(${(st.postings / ing.audioSeconds).toFixed(0)} hashes/s) |`,
    );
    lines.push(`| fingerprint extraction, one core (median of 5) | ${median(speeds).toFixed(0)}x real time |`);
    lines.push(
      `| end-to-end ingest (decode included, ${os.availableParallelism()} cores) | ` +
        `${(ing.audioSeconds / ing.elapsedSeconds).toFixed(0)}x real time (${ing.elapsedSeconds.toFixed(1)} s) |`,
    );
    if (scale > 1) {
      const clean = scored.filter((s) => s.q.condition === 'clean');
      lines.push(
        ...(await scaleUp(
          engine,
          catalog,
          scale,
          clean.map((s) => s.q),
          median(clean.map((s) => s.cpuMs)),
        )),
      );
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
    // Acceptance sweep, for tuning.
    const sweep = (ber: number, aligned: number) => {
      const row = CONDITIONS.map((c) => {
        const pos = scored.filter((x) => x.q.condition === c.name && x.q.truth);
        return `${((100 * pos.filter((x) => x.correct && accepted(x, ber, aligned)).length) / pos.length).toFixed(1)}`;
      });
      process.stdout.write(`| ${ber} | ${aligned} | ${wrongAt(ber, aligned)} | ${row.join(' | ')} |\n`);
    };
    process.stdout.write(`\n| max bit error rate | min aligned hashes | wrong+FP | ${CONDITIONS.map((c) => c.name).join(' | ')} |\n`);
    process.stdout.write(`|${'---|'.repeat(CONDITIONS.length + 3)}\n`);
    for (const ber of [B - 0.04, B - 0.02, B, B + 0.02, B + 0.04].map((x) => Math.round(x * 100) / 100)) sweep(ber, A);
    for (const aligned of [6, 8]) sweep(B, aligned);
  } finally {
    await engine.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Adds speed-shifted copies of every catalog track as distractors, then times clean queries again. */
async function scaleUp(engine: Engine, catalog: CorpusTrack[], factor: number, clean: Query[], baseCpu: number): Promise<string[]> {
  const speeds = [0.85, 0.88, 0.91, 0.94, 1.06, 1.09, 1.12, 1.15, 1.18].slice(0, factor - 1);
  const bar = new ProgressBar('distractors');
  let done = 0;
  for (const t of catalog) {
    const pcm = await decodeFile(t.file);
    const items = speeds.map((s) => ({ s, fp: fingerprint(changeSpeed(pcm, s), 'index') }));
    // Distractors carry no original file: they exist to load the index, not to be rebuilt.
    await engine.commit(
      items.map(({ s, fp }) => ({
        meta: {
          title: `${t.name} x${s}`,
          artist: null,
          album: null,
          duration_seconds: t.duration / s,
          sample_rate: null,
          channels: null,
          bitrate: null,
          format: 'pcm',
          file_name: `distractor-${s}-${t.name}`,
          sha256: createHash('sha256').update(`distractor-${s}-${t.name}`).digest('hex'),
          file_size_bytes: 0,
          raw_path: '',
        },
        fp,
      })),
    );
    bar.update(++done, catalog.length, `${speeds.length} copies each`);
  }
  const cpu: number[] = [];
  let correct = 0;
  for (const q of clean) {
    const pcm = await decodeFile(q.file);
    const c0 = process.cpuUsage();
    const m = (await engine.identify(pcm, 1)).filter((x) => x.alignedHashes >= DEFAULT_MATCHER.minAligned && x.bitErrorRate <= DEFAULT_MATCHER.maxBitErrorRate);
    const c1 = process.cpuUsage(c0);
    cpu.push((c1.user + c1.system) / 1000);
    if (q.truth ? m[0]?.track.file_name === path.basename(q.truth.file) : m.length === 0) correct++;
  }
  const st = engine.stats();
  return [
    `| at ${factor}x the catalog (${st.tracks} tracks, speed-shifted copies as distractors): clean query CPU median | ` +
      `${median(cpu).toFixed(1)} ms (${(median(cpu) / baseCpu).toFixed(2)}x the ${baseCpu.toFixed(1)} ms of the same clips at 1x); clean queries right ` +
      `${correct}/${clean.length}; index ${(st.bytes / 2 ** 20).toFixed(1)} MB, ${st.postings} postings |`,
  ];
}

// Looped game music repeats passages sample for sample: a clip of one repeat matches every other
// equally, so an answer at another offset is right when the track's audio there is the excerpt's
// (normalised correlation of the 5 s waveforms at least 0.9, searched over +-0.1 s).
const sourcePcm = new Map<string, Promise<Float32Array>>();
async function sameAudio(file: string, start: number, answer: number): Promise<boolean> {
  if (!sourcePcm.has(file)) sourcePcm.set(file, decodeFile(file));
  const pcm = await sourcePcm.get(file)!;
  const a0 = Math.round(start * SAMPLE_RATE);
  const n = CLIP_SECONDS * SAMPLE_RATE;
  const reach = Math.round(0.1 * SAMPLE_RATE);
  let best = -1;
  for (let lag = -reach; lag <= reach; lag++) {
    const b0 = Math.round(answer * SAMPLE_RATE) + lag;
    if (b0 < 0 || b0 + n > pcm.length || a0 + n > pcm.length) continue;
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < n; k += 4) {
      const x = pcm[a0 + k]!;
      const y = pcm[b0 + k]!;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    best = Math.max(best, ab / Math.sqrt(aa * bb + 1e-12));
  }
  return best >= 0.9;
}

await main();
