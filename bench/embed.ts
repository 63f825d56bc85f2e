// Embedding speed and memory of the vibe lane's model: the front end alone, the pool at each
// thread count (x real time in all and per thread), the latency of one 10 s clip, and the
// resident memory a loaded model adds. `npm run bench:embed [-- --threads 1,2] [-- --tracks 4]
// [-- --seconds 120] [-- --runs 3]`
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/base/config.js';
import { setLogLevel } from '../src/base/log.js';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { openEmbedder } from '../src/vibe/embedder.js';
import { musicnnPatches } from '../src/vibe/inputs.js';
import { fetchCorpus } from '../tools/corpus.js';
import { median, quantile } from './stats.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    tracks: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '120' },
    runs: { type: 'string', default: '3' },
  },
});
setLogLevel('warn');
const runs = Number(values.runs);
const config = loadConfig();
if (config.musicnnH5 === undefined) throw new Error('no MusiCNN weights: set AUDIO_IDENT_MUSICNN_H5');

const tracks = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name)).slice(0, Number(values.tracks));
const pcms = await Promise.all(tracks.map((t) => decodeFile(t.file, { maxSeconds: Number(values.seconds) })));
const audioSeconds = pcms.reduce((n, p) => n + p.length, 0) / SAMPLE_RATE;
console.log(
  `MusiCNN (MSD) on ${tracks.length} corpus tracks, ${audioSeconds.toFixed(0)} s of audio; ${os.availableParallelism()} cores, load average ` +
    `${os.loadavg()[0]!.toFixed(1)} at the start`,
);

const frontEnd: number[] = [];
for (let r = 0; r < runs; r++) {
  const cpu0 = process.cpuUsage();
  for (const p of pcms) musicnnPatches(p);
  const cpu = process.cpuUsage(cpu0);
  frontEnd.push(audioSeconds / ((cpu.user + cpu.system) / 1e6));
}
console.log(`front end alone (mel patches, main thread): ${median(frontEnd).toFixed(0)}x real time per CPU-second (median of ${runs})`);

const gc = (globalThis as { gc?: () => void }).gc;
console.log(
  '\n| threads | x real time, all threads | x real time per thread | x real time per CPU-second | 10 s clip latency p50 / p95 ms | ' +
    'RSS added by the loaded model(s) MB | RSS after embedding MB |',
);
console.log('|---|---|---|---|---|---|---|');
for (const threads of values.threads.split(',').map(Number)) {
  gc?.();
  const before = process.memoryUsage().rss;
  const opened = await openEmbedder({ ...config, vibeThreads: threads });
  if (!opened.embedder) throw new Error(opened.reason);
  const embedder = opened.embedder;
  const loaded = process.memoryUsage().rss;
  const speeds: number[] = [];
  const perCpu: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await Promise.all(pcms.map((p) => embedder.embedTrack(p)));
    const cpu = process.cpuUsage(cpu0);
    speeds.push(audioSeconds / ((performance.now() - t0) / 1000));
    // CPU time of all the process's threads: what a core would take, however busy the machine.
    perCpu.push(audioSeconds / ((cpu.user + cpu.system) / 1e6));
  }
  const after = process.memoryUsage().rss;
  const clip = pcms[0]!.subarray(0, 10 * SAMPLE_RATE);
  const latency: number[] = [];
  for (let r = 0; r < 10 * runs; r++) {
    const t0 = performance.now();
    await embedder.embedClip(clip);
    latency.push(performance.now() - t0);
  }
  await embedder.close();
  const s = median(speeds);
  const mb = (b: number) => (b / 2 ** 20).toFixed(0);
  console.log(
    `| ${threads} | ${s.toFixed(1)} | ${(s / threads).toFixed(1)} | ${median(perCpu).toFixed(1)} | ` +
      `${median(latency).toFixed(0)} / ${quantile(latency, 0.95).toFixed(0)} | ${mb(loaded - before)} | ${mb(after - before)} |`,
  );
}
console.log(`\nload average at the end ${os.loadavg()[0]!.toFixed(1)} (other work shares these cores)`);
