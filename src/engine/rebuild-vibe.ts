// `audio-ident rebuild-index --vibe`: every visible track is decoded from its stored original and
// embedded again with the configured model; the new vectors replace all the old ones at once
// (one generation of the embedded store; Qdrant's collection is dropped and filled again), then
// the catalog records the model and each track's tags. Run it with the server stopped, as the
// fingerprint rebuild; after a model change it is the way back to a working vibe lane.
import type { Config } from '../base/config.js';
import { AppError } from '../base/errors.js';
import { decodeFile, SAMPLE_RATE } from '../audio/decode.js';
import { DEFAULT_MATCHER } from '../exact/matcher.js';
import { Engine } from './engine.js';
import { pool } from '../base/pool.js';
import type { VectorPoint } from '../vibe/store/vector-store.js';
import type { RebuildSummary } from './rebuild.js';

export async function rebuildVibe(config: Config, onProgress?: (done: number, total: number) => void): Promise<RebuildSummary & { vectors: number; model: string }> {
  const started = performance.now();
  const engine = await Engine.open(config, DEFAULT_MATCHER, { vibe: 'replace' });
  try {
    const lane = engine.vibe;
    if (!lane) throw new AppError('LANE_UNAVAILABLE', `cannot re-embed: ${engine.vibeUnavailable}`);
    const { tracks } = await engine.catalog.list();
    const points: VectorPoint[] = [];
    const rows: Parameters<typeof engine.catalog.setVibe>[0] = [];
    let audioSeconds = 0;
    let done = 0;
    await pool(tracks, config.concurrency, async (t) => {
      const pcm = await decodeFile(engine.raw.absolute(t.raw_path), { ffmpegPath: config.ffmpegPath, label: t.file_name });
      audioSeconds += pcm.length / SAMPLE_RATE;
      const e = await lane.embedder.embedTrack(pcm);
      points.push(...lane.points(t, e));
      rows.push({ id: t.id, embedding_model: lane.space.id, embedding_dim: lane.space.dim, vibe_tags: lane.topTags(e.track) });
      onProgress?.(++done, tracks.length);
    });
    await engine.vectors.replaceAll(lane.space, points);
    await engine.catalog.setVibe(rows);
    return { tracks: tracks.length, audioSeconds, elapsedSeconds: (performance.now() - started) / 1000, vectors: points.length, model: lane.space.id };
  } finally {
    await engine.close();
  }
}
