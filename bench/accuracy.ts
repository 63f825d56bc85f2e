// Accuracy benchmark of the exact lane (npm run bench:accuracy [-- --scale 10] [--quick]
// [--conditions REGEX] [--list] [--clips-only]). --clips-only makes and caches the clips of the
// selected conditions and stops: the first run of the whole sweep cuts about 11 000 clips, hours
// on two cores, which is better done in slices (--conditions '^speed', ...) than in one sitting.
// Method, and why:
// - Indexes the full shared corpus minus 30 tracks kept out as non-catalog material (the split
//   of tools/corpus.ts, shared with the live bench), so that negatives are real music of the same
//   kind, some of it sharing themes with catalog tracks, not noise.
// - Identifies 5 s excerpts, drawn once so that every condition degrades the same audio and the
//   conditions compare pairwise: 2 per catalog track and 200 from the kept-out tracks under the
//   seven conditions of earlier runs (their sizes unchanged, so old figures stay comparable);
//   the first of each track's two and the first 60 negatives under the sweep of speed, tempo,
//   pitch, rooms and noise beds (SWEEP_CONDITIONS), where 37 conditions at full size would cost
//   about an hour of clip making and identifying on two cores for little extra precision. A
//   "clean" row on the sweep's own excerpts is its paired baseline.
// - Right means the right track at the excerpt's offset in the track (±0.5 s), or where the track
//   repeats the same audio (looped game music); the offset is in track time whatever the speed,
//   since a matcher that survives a speed change still has to say where the excerpt is.
// - Tuning split: each condition is tune or held-out (tools/corpus.ts says which and why), and the
//   catalog and the kept-out tracks are each split in halves by the same seeded generator. The
//   team sets thresholds on this bench, so accuracy on material it tuned on overstates what a
//   new recording gets: the table reports tune and held-out tracks apart, and the acceptance
//   sweep and the closest wrong answer used for calibration look at tune conditions on tune
//   tracks only. Held-out figures are for judging a change, not for choosing its parameters.
// - The wider negatives: every 5 s excerpt of the kept-out tracks, 2.5 s apart, clean, since
//   false positives are rare and 200 negatives per condition cannot show a rate near zero.
// - Candidates at any bit error rate are kept, so that the acceptance can be swept afterwards.
// - Query CPU is process CPU time around identify(), decode excluded, since wall time on a shared
//   two-core machine says little; it is given for the earlier conditions apart, to stay comparable.
// Prints Markdown tables.
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
import {
  ACCURACY_CONDITIONS,
  clipDir,
  CONDITIONS,
  type CorpusTrack,
  fetchCorpus,
  KEPT_OUT,
  keepOut,
  makeClip,
  pool,
  ROOM_STEP,
  rng,
  SPLIT_SEED,
} from '../tools/corpus.js';
import { extractionSpeeds } from './extraction.js';
import { median, quantile } from './stats.js';

const CLIP_SECONDS = 5;
const NEGATIVES = 200;
/** Negatives per sweep condition: the first of the 200. */
const SWEEP_NEGATIVES = 60;
const OFFSET_TOLERANCE = 0.5;
/** --quick: the clean baseline and one condition of each kind of change, both groups. */
const QUICK = ['clean', 'speed 0.95', 'speed 1.05', 'tempo 0.97', 'pitch +50 cents', 'room RT60 1.0 s'];

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    conditions: { type: 'string' },
    quick: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    'clips-only': { type: 'boolean', default: false },
  },
});
const scale = Number(values.scale);
setLogLevel('warn');

let selected = ACCURACY_CONDITIONS;
if (values.quick) selected = selected.filter((c) => QUICK.includes(c.name));
if (values.conditions !== undefined) {
  const re = new RegExp(values.conditions, 'i');
  selected = selected.filter((c) => re.test(c.name));
}
/** The conditions of earlier runs, at their earlier size. */
const FULL_SIZE = new Set(CONDITIONS.map((c) => c.name));

interface Query {
  condition: string;
  file: string;
  truth: CorpusTrack | null;
  /** The excerpt's track (the truth, or the kept-out track of a negative). */
  src: CorpusTrack;
  start: number;
  /** Index of the excerpt in the draw (-1 for the wide negatives). */
  index: number;
  /** Tune condition and a track of the tune half: material the thresholds may be fitted to. */
  tune: boolean;
  tuneTrack: boolean;
}
interface Scored {
  q: Query;
  aligned: number; // of the best candidate (0 when none)
  ber: number; // its sketch's bit error rate (1 when none)
  answer: string | null; // its track's file name
  offset: number; // and its offset in that track, s
  correct: boolean; // best candidate is the right track at the right offset
  repeat: boolean; // ... counted right because the track repeats the excerpt's audio at the offset given
  rightTrack: boolean; // best candidate is the right track (a looped passage may recur at another offset)
  cpuMs: number;
}

/** A deterministic half of `tracks`, drawn with `r`. */
function half(tracks: CorpusTrack[], r: () => number): Set<string> {
  const keyed = tracks.map((t) => ({ f: t.file, k: r() })).sort((a, b) => a.k - b.k);
  return new Set(keyed.slice(0, Math.floor(tracks.length / 2)).map((x) => x.f));
}

const pct = (n: number, of: number) => (of ? `${((100 * n) / of).toFixed(1)}%` : '-');

async function main() {
  if (values.list) {
    process.stdout.write('| condition | group | degrade.sh steps | output | excerpts |\n|---|---|---|---|---|\n');
    for (const c of selected) {
      const steps = c.steps.map((s) =>
        s === ROOM_STEP && c.room ? `ir:(room RT60 ${c.room.rt60.toFixed(1)} s, seed ${c.room.seed})` : s.replace(/:\/.*\//, ':'),
      );
      process.stdout.write(`| ${c.name} | ${c.group} | ${steps.join(' ') || '-'} | ${c.ext} | ${FULL_SIZE.has(c.name) ? 'full' : 'sweep'} |\n`);
    }
    return;
  }
  if (!selected.length) {
    process.stderr.write(`no condition matches ${values.conditions}; --list shows them\n`);
    process.exit(2);
  }
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
  // Drawn after the excerpts, so that those are the ones of earlier runs (and their cached clips).
  const tuneTracks = new Set([...half(catalog, r), ...half(keptOut, r)]);
  const sweepExcerpts = new Set<number>();
  for (let k = 0; k < catalog.length; k++) sweepExcerpts.add(2 * k);
  for (let j = 0; j < SWEEP_NEGATIVES; j++) sweepExcerpts.add(2 * catalog.length + j);

  const queries: Query[] = [];
  for (const c of selected) {
    const dir = clipDir('bench-queries', c);
    excerpts.forEach((e, i) => {
      if (!FULL_SIZE.has(c.name) && !sweepExcerpts.has(i)) return;
      const tuneTrack = tuneTracks.has(e.src.file);
      queries.push({
        condition: c.name,
        truth: e.truth,
        start: e.start,
        src: e.src,
        index: i,
        file: path.join(dir, `${i}.${c.ext}`),
        tuneTrack,
        tune: tuneTrack && c.group === 'tune',
      });
    });
  }
  const gen = new ProgressBar('queries');
  let made = 0;
  await pool(queries, os.availableParallelism(), async (q) => {
    const c = selected.find((x) => x.name === q.condition)!;
    await makeClip(q.src.file, q.file, q.start, CLIP_SECONDS, c);
    gen.update(++made, queries.length, 'clips (cached after the first run)');
  });
  if (values['clips-only']) return;

  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-bench-'));
  // Candidates at any bit error rate are kept so that the acceptance can be calibrated below.
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

    const identify = async (q: Query, pcm: Float32Array): Promise<Scored> => {
      const c0 = process.cpuUsage();
      const matches = await engine.identify(pcm, 1);
      const c1 = process.cpuUsage(c0);
      const top = matches[0];
      const rightTrack = !!top && !!q.truth && top.track.file_name === path.basename(q.truth.file);
      const near = rightTrack && Math.abs(top.offsetSeconds - q.start) <= OFFSET_TOLERANCE;
      const repeat = rightTrack && !near && (await sameAudio(q.truth!.file, q.start, top.offsetSeconds));
      return {
        q,
        aligned: top?.alignedHashes ?? 0,
        ber: top?.bitErrorRate ?? 1,
        answer: top?.track.file_name ?? null,
        offset: top?.offsetSeconds ?? 0,
        correct: near || repeat,
        repeat,
        rightTrack,
        cpuMs: (c1.user + c1.system) / 1000,
      };
    };
    const pb = new ProgressBar('identify');
    const scored: Scored[] = new Array(queries.length);
    let done = 0;
    // One at a time: process CPU around an identify counts every thread, so two at once would
    // each be charged the other's work.
    await pool(queries, 1, async (q, i) => {
      scored[i] = await identify(q, await decodeFile(q.file));
      pb.update(++done, queries.length, '');
    });

    // The wider negatives: every 5 s excerpt of the kept-out tracks, 2.5 s apart, clean.
    const wide: Scored[] = [];
    const wb = new ProgressBar('kept-out excerpts');
    for (const [k, t] of keptOut.entries()) {
      const pcm = await decodeFile(t.file);
      const tuneTrack = tuneTracks.has(t.file);
      for (let at = 0; at + CLIP_SECONDS * SAMPLE_RATE <= pcm.length; at += (CLIP_SECONDS / 2) * SAMPLE_RATE) {
        const q: Query = { condition: 'clean', file: t.file, truth: null, src: t, start: at / SAMPLE_RATE, index: -1, tuneTrack, tune: tuneTrack };
        wide.push(await identify(q, pcm.subarray(at, at + CLIP_SECONDS * SAMPLE_RATE)));
      }
      wb.update(k + 1, keptOut.length, `${wide.length} excerpts`);
    }

    const A = DEFAULT_MATCHER.minAligned;
    const B = DEFAULT_MATCHER.maxBitErrorRate;
    const accepted = (s: Scored, ber = B, aligned = A) => s.aligned >= aligned && s.ber <= ber;
    const all = [...scored, ...wide];
    const lines: string[] = [];
    const tuneCatalog = catalog.filter((t) => tuneTracks.has(t.file)).length;
    const tuneKeptOut = keptOut.filter((t) => tuneTracks.has(t.file)).length;
    lines.push(
      `Catalog: ${catalog.length} tracks, ${hours.toFixed(2)} h; ${KEPT_OUT} tracks kept out; ${CLIP_SECONDS} s clips; acceptance: at least ${A} distinct ` +
        `aligned hashes and a sketch bit error rate of at most ${B}. Tracks: ${tuneCatalog} catalog and ${tuneKeptOut} kept-out tracks tune, ` +
        `${catalog.length - tuneCatalog} and ${keptOut.length - tuneKeptOut} held out. Earlier conditions: 2 excerpts per catalog track and ` +
        `${NEGATIVES} negatives; sweep conditions: 1 per track and ${SWEEP_NEGATIVES} negatives.`,
    );
    lines.push('');
    lines.push(
      '| condition | group | right (tune tracks) | right (held-out tracks) | wrong answers (tune / held-out tracks) | ' +
        'false positives (tune / held-out kept-out tracks) | right at a repeat |',
    );
    lines.push('|---|---|---|---|---|---|---|');
    const row = (name: string, group: string, s: Scored[]) => {
      const pos = s.filter((x) => x.q.truth);
      const neg = s.filter((x) => !x.q.truth);
      const right = (tune: boolean) => {
        const p = pos.filter((x) => x.q.tuneTrack === tune);
        const n = p.filter((x) => x.correct && accepted(x)).length;
        return `${pct(n, p.length)} (${n}/${p.length})`;
      };
      const count = (xs: Scored[], tune: boolean) => xs.filter((x) => x.q.tuneTrack === tune).length;
      const wrong = pos.filter((x) => !x.correct && accepted(x));
      const fp = neg.filter((x) => accepted(x));
      lines.push(
        `| ${name} | ${group} | ${right(true)} | ${right(false)} | ${count(wrong, true)} / ${count(wrong, false)} | ` +
          `${count(fp, true)} / ${count(fp, false)} of ${count(neg, true)} / ${count(neg, false)} | ${pos.filter((x) => x.repeat && accepted(x)).length} |`,
      );
    };
    const ofCondition = (name: string) => scored.filter((x) => x.q.condition === name);
    const selectedEarlier = selected.filter((c) => FULL_SIZE.has(c.name));
    for (const c of selectedEarlier) row(c.name, c.group, ofCondition(c.name));
    const sweepSelected = selected.filter((c) => !FULL_SIZE.has(c.name));
    if (sweepSelected.length && selected.some((c) => c.name === 'clean'))
      row(
        'clean, on the sweep excerpts',
        'tune',
        ofCondition('clean').filter((x) => sweepExcerpts.has(x.q.index)),
      );
    for (const c of sweepSelected) row(c.name, c.group, ofCondition(c.name));
    const wideFp = (tune: boolean) => wide.filter((x) => x.q.tuneTrack === tune && accepted(x)).length;
    const wideN = (tune: boolean) => wide.filter((x) => x.q.tuneTrack === tune).length;
    lines.push(
      `| every 5 s excerpt of the kept-out tracks, 2.5 s apart, clean | tune | - | - | - | ` +
        `${wideFp(true)} / ${wideFp(false)} of ${wideN(true)} / ${wideN(false)} | - |`,
    );

    // The closest wrong answer bounds the acceptance from the other side: calibrate on the tune
    // material's, and let the held-out one show whether that margin holds.
    lines.push('');
    for (const [label, pool_] of [
      ['tune conditions on tune tracks', all.filter((s) => s.q.tune)],
      ['held-out conditions or tracks', all.filter((s) => !s.q.tune)],
    ] as const) {
      const wrong = pool_.filter((s) => s.aligned >= A && !s.rightTrack && s.answer !== null).sort((a, b) => a.ber - b.ber || b.aligned - a.aligned)[0];
      lines.push(
        wrong
          ? `Closest answer naming a wrong track, ${label}: bit error rate ${wrong.ber.toFixed(3)} with ${wrong.aligned} aligned hashes ` +
              `(${wrong.q.condition}, ${wrong.q.truth ? 'excerpt' : 'negative'} of ${wrong.q.src.name} at ${wrong.q.start.toFixed(1)} s, ` +
              `answered ${wrong.answer} at ${wrong.offset.toFixed(1)} s).`
          : `Closest answer naming a wrong track, ${label}: none with ${A} aligned hashes.`,
      );
    }

    const cpuRows = (label: string, s: Scored[]) => {
      if (!s.length) return;
      const cpu = s.map((x) => x.cpuMs);
      const answered = s.filter((x) => accepted(x)).map((x) => x.cpuMs);
      const unanswered = s.filter((x) => !accepted(x)).map((x) => x.cpuMs);
      lines.push(`| query CPU per 5 s clip, decode excluded (median / p95), ${label} | ${median(cpu).toFixed(1)} ms / ${quantile(cpu, 0.95).toFixed(1)} ms |`);
      lines.push(
        `| ... of clips answered / not answered (median / p95) | ${median(answered).toFixed(1)} / ${quantile(answered, 0.95).toFixed(1)} ms; ` +
          `${median(unanswered).toFixed(1)} / ${quantile(unanswered, 0.95).toFixed(1)} ms |`,
      );
    };
    lines.push('');
    lines.push('| figure | value |');
    lines.push('|---|---|');
    cpuRows(
      'earlier conditions',
      scored.filter((x) => FULL_SIZE.has(x.q.condition)),
    );
    cpuRows(
      'sweep conditions',
      scored.filter((x) => !FULL_SIZE.has(x.q.condition)),
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
      const clean = ofCondition('clean');
      if (!clean.length) lines.push('| --scale | needs the clean condition, which was not selected |');
      else
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

    // Acceptance sweep, for tuning: tune conditions on tune tracks only, so that what the
    // thresholds are chosen on is never what judges them. wrong+FP counts the answers naming a
    // wrong track there (false positives on tune negatives and the tune wide negatives, wrong
    // tracks on tune positives; the right track at a recurring passage is neither).
    const tuneConditions = selected.filter((c) => c.group === 'tune');
    if (!tuneConditions.length) return;
    const tuneScored = all.filter((s) => s.q.tune);
    const wrongAt = (ber: number, aligned: number) => tuneScored.filter((s) => accepted(s, ber, aligned) && !s.rightTrack).length;
    const sweep = (ber: number, aligned: number) => {
      const accs = tuneConditions.map((c) => {
        const pos = scored.filter((x) => x.q.condition === c.name && x.q.truth && x.q.tune);
        return (100 * pos.filter((x) => x.correct && accepted(x, ber, aligned)).length) / pos.length;
      });
      const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
      process.stdout.write(`| ${ber} | ${aligned} | ${wrongAt(ber, aligned)} | ${mean.toFixed(1)} | ${accs.map((a) => a.toFixed(1)).join(' | ')} |\n`);
    };
    process.stdout.write(
      `\nAcceptance sweep, tune conditions on tune tracks (% right):\n\n` +
        `| max bit error rate | min aligned hashes | wrong+FP | mean | ${tuneConditions.map((c) => c.name).join(' | ')} |\n`,
    );
    process.stdout.write(`|${'---|'.repeat(tuneConditions.length + 4)}\n`);
    for (const ber of [B - 0.04, B - 0.02, B, B + 0.02, B + 0.04].map((x) => Math.round(x * 100) / 100)) sweep(ber, A);
    for (const aligned of [6, 8]) sweep(B, aligned);
  } finally {
    await engine.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Adds speed-shifted copies of every catalog track as distractors, then times clean queries again:
 * 0.80-1.22x, outside the time scales the lane matches (+-7%), so that they load the index
 * without being answers.
 */
async function scaleUp(engine: Engine, catalog: CorpusTrack[], factor: number, clean: Query[], baseCpu: number): Promise<string[]> {
  const speeds = [0.8, 0.83, 0.86, 0.89, 1.1, 1.13, 1.16, 1.19, 1.22].slice(0, factor - 1);
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
