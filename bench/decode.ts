// Decoding cost benchmark (npm run bench:decode [-- --clips 40] [-- --repeats 5]): CPU time to
// turn WebM/Opus as browsers send it into 16 kHz mono PCM, in process (our demultiplexer and
// libopus in WebAssembly, fed 250 ms slices as a live session is) against ffmpeg (one process per
// clip, as uploads of other formats and the catalog are decoded). CPU time, not wall time, so
// that the figures hold on a machine shared with other work; medians over the repeats.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { OpusPcmStream } from '../src/audio/opus/opus-decode.js';
import { CACHE_DIR, fetchCorpus, rng } from '../tools/corpus.js';
import { quantile } from './stats.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { clips: { type: 'string', default: '40' }, repeats: { type: 'string', default: '5' } } });
const CLIP_S = 12;

/** CPU seconds of this process and of its reaped children. */
function cpu(): { self: number; children: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const t = (i: number) => Number(stat[i]) / 100;
  return { self: t(11) + t(12), children: t(13) + t(14) };
}

async function main() {
  const corpus = await fetchCorpus('small');
  const dir = path.join(CACHE_DIR, 'bench-decode');
  await mkdir(dir, { recursive: true });
  const r = rng(11);
  const clips: { file: string; data: Buffer }[] = [];
  for (let i = 0; i < Number(values.clips); i++) {
    const t = corpus[Math.floor(r() * corpus.length)]!;
    const start = r() * (t.duration - CLIP_S - 1);
    const file = path.join(dir, `${t.name}-${start.toFixed(2)}.webm`);
    if (!existsSync(file))
      await run('ffmpeg', ['-v', 'error', '-y', '-ss', start.toFixed(3), '-t', String(CLIP_S), '-i', t.file, '-c:a', 'libopus', '-b:a', '32k', file]);
    clips.push({ file, data: await readFile(file) });
  }
  const slice = Math.ceil((32000 / 8) * 0.25); // 250 ms of 32 kbit/s
  const inProcess: number[] = [];
  const ffmpeg: number[] = [];
  let audio = 0;
  for (let rep = 0; rep < Number(values.repeats); rep++) {
    let samples = 0;
    let c0 = cpu();
    for (const c of clips) {
      const s = await OpusPcmStream.open('webm');
      for (let at = 0; at < c.data.length; at += slice) samples += s.push(c.data.subarray(at, at + slice)).length;
      s.end(false);
      s.free();
    }
    let c1 = cpu();
    audio = samples / SAMPLE_RATE;
    inProcess.push(c1.self - c0.self);
    c0 = cpu();
    for (const c of clips) await decodeFile(c.file);
    c1 = cpu();
    // The parent's share (spawn, pipes) counts too.
    ffmpeg.push(c1.self - c0.self + (c1.children - c0.children));
    console.error(
      `repeat ${rep + 1}: in process ${(inProcess.at(-1)! * 1000).toFixed(0)} ms, ffmpeg ${(ffmpeg.at(-1)! * 1000).toFixed(0)} ms CPU for ` +
        `${audio.toFixed(0)} s of audio`,
    );
  }
  const perSecond = (xs: number[]) => (quantile(xs, 0.5) * 1000) / audio;
  const lines = [
    `${clips.length} clips of ${CLIP_S} s, WebM/Opus 32 kbit/s stereo (ffmpeg's libopus); CPU time, median of ${values.repeats} repeats.`,
    '',
    `| decoder | CPU ms per ${CLIP_S} s clip | CPU ms per second of audio | x real time on one core |`,
    '|---|---|---|---|',
    ...(
      [
        ['in process (WebAssembly libopus, 250 ms slices)', inProcess],
        ['ffmpeg, one process per clip', ffmpeg],
      ] as const
    ).map(
      ([name, xs]) =>
        `| ${name} | ${((quantile(xs, 0.5) * 1000) / clips.length).toFixed(1)} | ${perSecond(xs).toFixed(2)} | ${(1000 / perSecond(xs)).toFixed(0)}x |`,
    ),
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

await main();
