// Latency of vibe searches in bench:vibe: the real embedded store filled with the catalog's
// vectors (vibe-served.ts), then 10 s clips embedded in the worker pool by the lane's model and
// looked up, one at a time and several at once.
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import type { Embedder } from '../src/vibe/embedder.js';
import { VibeLane } from '../src/vibe/lane.js';
import type { VectorStore } from '../src/vibe/store/vector-store.js';
import { fetchCorpus, pool } from '../tools/corpus.js';
import { median, quantile } from './stats.js';

export async function latency(embedder: Embedder, store: VectorStore, runs: number, ffmpegPath: string): Promise<void> {
  const lane = new VibeLane(embedder, store);
  const corpus = await fetchCorpus('full');
  const clips: Float32Array[] = [];
  for (const t of corpus.slice(0, 12)) {
    const pcm = await decodeFile(t.file, { ffmpegPath, maxSeconds: 40 });
    clips.push(pcm.slice(25 * SAMPLE_RATE, 35 * SAMPLE_RATE));
  }
  const count = await store.count();
  console.log(
    `\nvibe search latency, 10 s clips: embed in the pool + nearest tracks in the embedded store (${count.track} tracks, ${count.chunk} chunk vectors)`,
  );
  console.log('| searches in flight | runs | p50 ms | p95 ms |');
  console.log('|---|---|---|---|');
  for (const inFlight of [1, 4]) {
    const times: number[] = [];
    await pool(
      Array.from({ length: runs }, (_, i) => i),
      inFlight,
      async (i) => {
        const started = performance.now();
        await lane.search(clips[i % clips.length]!, 10);
        times.push(performance.now() - started);
      },
    );
    console.log(`| ${inFlight} | ${runs} | ${median(times).toFixed(0)} | ${quantile(times, 0.95).toFixed(0)} |`);
  }
}
