// Latency of vibe searches in bench:vibe: the cached catalog embeddings loaded into the real
// embedded store (as ingest would store them), then 10 s clips embedded in the worker pool and
// looked up, one at a time and several at once.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeFile, SAMPLE_RATE } from '../src/pipeline/decode.js';
import type { Embedder } from '../src/vibe/embedder.js';
import { VibeLane } from '../src/vibe/lane.js';
import { UsearchStore } from '../src/vibe/usearch-store.js';
import { fetchCorpus, pool } from '../test/corpus.js';
import { median, quantile } from './stats.js';
import type { CachedTrack } from './vibe-cache.js';

const f32 = (a: number[]) => Float32Array.from(a);

export async function latency(embedder: Embedder, tracks: CachedTrack[], runs: number, ffmpegPath: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-vibe-bench-'));
  try {
    const store = UsearchStore.open(dir);
    const lane = new VibeLane(embedder, store);
    await store.add(
      lane.space,
      tracks.flatMap((t, i) =>
        lane.points(
          { id: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, fpId: i + 1 },
          { track: { vector: f32(t.track.vector), tags: f32(t.track.tags) }, chunks: t.chunks.map((c) => ({ vector: f32(c.vector), tags: f32(c.tags), startSeconds: c.start, seconds: 10 })) },
        ),
      ),
    );
    const corpus = await fetchCorpus('full');
    const clips: Float32Array[] = [];
    for (const t of corpus.slice(0, 12)) {
      const pcm = await decodeFile(t.file, { ffmpegPath, maxSeconds: 40 });
      clips.push(pcm.slice(25 * SAMPLE_RATE, 35 * SAMPLE_RATE));
    }
    const count = await store.count();
    console.log(`\nvibe search latency, 10 s clips: embed in the pool + nearest tracks in the embedded store (${count.track} tracks, ${count.chunk} chunk vectors)`);
    console.log('| searches in flight | runs | p50 ms | p95 ms |');
    console.log('|---|---|---|---|');
    for (const inFlight of [1, 4]) {
      const times: number[] = [];
      await pool(Array.from({ length: runs }, (_, i) => i), inFlight, async (i) => {
        const started = performance.now();
        await lane.nearest(await embedder.embedClip(clips[i % clips.length]!), 10);
        times.push(performance.now() - started);
      });
      console.log(`| ${inFlight} | ${runs} | ${median(times).toFixed(0)} | ${quantile(times, 0.95).toFixed(0)} |`);
    }
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
