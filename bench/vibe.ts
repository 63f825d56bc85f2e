// bench:vibe: how well the vibe lane finds tracks that sound alike, on the full shared corpus with
// the Debian package a track comes from as its label (one game's soundtrack shares a style).
// Same-package precision@10 for whole-track queries and for one 10 s chunk per track as the
// query (the query's own track excluded): the lane as it runs (its vectors in the real store, its
// own search: vibe-served.ts), next to random ranking, an MFCC mean/std baseline, the plain
// 200-d embedding, other ways of turning it into vectors, vectors from the model's other layers
// (vibe-layers.ts) and re-ranking; then the extra cost of those layers' outputs, and the latency
// of vibe searches for 10 s clips through the real store with the lane's own model.
//
//   npm run bench:vibe [-- --embed-only | --cached-only] [-- --precision-only] [-- --latency-runs N]
// --embed-only fills the cache; --cached-only evaluates the tracks cached so far (a partial run);
// --precision-only skips the latency part (with a filled cache, the run takes seconds).
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/base/config.js';
import { ProgressBar } from '../src/cli/progress.js';
import { setLogLevel } from '../src/base/log.js';
import { openEmbedder, type Embedder } from '../src/vibe/embedder.js';
import { musicnnPatches } from '../src/vibe/inputs.js';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { fetchCorpus, pool, rng, SPLIT_SEED } from '../tools/corpus.js';
import { computeCached, readCached, type CachedTrack } from './vibe-cache.js';
import { evaluate, PLAIN, printEvaluation, randomRow } from './vibe-eval.js';
import { openLayerEmbedder } from './vibe-layer-model.js';
import { checkDenseLayer, checkLaneVector, evaluateLayers, laneVector, layerCost, layerMethods, layerSpaces, printLayers, readHead } from './vibe-layers.js';
import { latency } from './vibe-latency.js';
import { evaluateReranking, printReranking, QE_SWEEP } from './vibe-rerank.js';
import { evaluateServed, printServed, servedStore } from './vibe-served.js';

const { values } = parseArgs({
  options: {
    'embed-only': { type: 'boolean', default: false },
    'cached-only': { type: 'boolean', default: false },
    'precision-only': { type: 'boolean', default: false },
    'latency-runs': { type: 'string', default: '60' },
  },
});
setLogLevel('warn');

const config = loadConfig();
async function openLane(): Promise<Embedder> {
  const opened = await openEmbedder(config);
  if (!opened.embedder) {
    console.error(`no vibe model: ${opened.reason}`);
    process.exit(1);
  }
  return opened.embedder;
}
// The cache is filled by the analysis model: the same graph and weights as the lane's model with
// other outputs, so its tags are the lane's bit for bit and checkLaneVector rebuilds the lane's vector.
const embedder = await openLayerEmbedder(config);
// Shuffled, so that an interrupted first run leaves a cache that samples every package.
const r = rng(SPLIT_SEED);
const corpus = (await fetchCorpus('full'))
  .map((t) => ({ t, k: r() }))
  .sort((a, b) => a.k - b.k)
  .map((x) => x.t);
const cached: CachedTrack[] = [];
const bar = new ProgressBar('embed');
let done = 0;
let computedSeconds = 0;
let computedMs = 0;
await pool(corpus, config.vibeThreads + 1, async (t) => {
  let c = readCached(embedder.model().id, t);
  if (!c && values['cached-only']) return;
  if (!c) {
    c = await computeCached(embedder, config.ffmpegPath, t);
    computedSeconds += c.seconds;
    computedMs += c.embedMs;
  }
  cached.push(c);
  bar.update(++done, corpus.length, `${cached.length} ready`);
});
cached.sort((a, b) => a.name.localeCompare(b.name));
const hours = cached.reduce((s, c) => s + c.seconds, 0) / 3600;
console.log(
  `\n# bench:vibe — ${embedder.model().id}, ${cached.length} of ${corpus.length} tracks (${hours.toFixed(2)} h), ` +
    `${new Set(cached.map((c) => c.pkg)).size} packages; embedding pool of ${config.vibeThreads} thread(s)`,
);
if (computedSeconds > 0) {
  // embedTrack's wall time while `threads` tracks share the pool: per-thread speed.
  console.log(
    `embedding speed this run: ${(computedSeconds / (computedMs / 1000)).toFixed(1)}x real time per track in flight ` +
      `(${(computedSeconds / 3600).toFixed(2)} h embedded)`,
  );
}
if (!values['embed-only']) {
  const head = readHead(config.musicnnH5!);
  const check = checkDenseLayer(head, cached);
  const evaluation = evaluate(cached);
  const lane = laneVector(head);
  const served = await servedStore(cached, lane);
  printServed(await evaluateServed(cached, served, lane), evaluation.find((r) => r.method === PLAIN)!, served);
  printEvaluation([randomRow(cached), ...evaluation]);
  const plainReranked = evaluateReranking(cached);
  printReranking('on the plain vectors', plainReranked);
  printLayers(evaluateLayers(cached, layerMethods(head)), check);
  for (const { name, space } of layerSpaces(head)) printReranking(`on ${name}`, evaluateReranking(cached, space, QE_SWEEP), plainReranked[0]);
  if (!values['precision-only']) {
    const plain = await openLane();
    const clip = (await decodeFile(corpus[0]!.file, { ffmpegPath: config.ffmpegPath, maxSeconds: 60 })).slice(30 * SAMPLE_RATE, 60 * SAMPLE_RATE);
    console.log(
      `\nthe lane's model gives the batch-normalised pooling statistics of the analysis model to ` +
        `${(await checkLaneVector(head, plain, embedder, clip)).toExponential(1)} of their scale`,
    );
    await layerCost(plain, embedder, clip, musicnnPatches(clip).starts.length, 15);
    await latency(plain, served.store, Number(values['latency-runs']), config.ffmpegPath);
    await plain.close();
  }
  await served.close();
}
await embedder.close();
