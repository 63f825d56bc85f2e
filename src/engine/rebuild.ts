// Rebuilds either lane's derived store from the stored originals. Run it with the server stopped:
// tracks ingested meanwhile would miss the new store.
// - rebuildIndex: every visible track is decoded and fingerprinted again into a new LMDB
//   environment, which replaces the old one only when complete.
// - rebuildVibe (`rebuild-index --vibe`): every visible track is embedded again with the
//   configured model; the new vectors replace all the old ones at once (one generation of the
//   embedded store; Qdrant's collection is dropped and filled again), then the catalog records the
//   model and each track's tags. After a model change it is the way back to a working vibe lane.
import { Catalog } from '../catalog/catalog.js';
import { openDatabase } from '../catalog/database.js';
import { migrate } from '../catalog/migrations.js';
import type { Config } from '../base/config.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import { FingerprintIndex } from '../exact/fingerprint-index.js';
import type { Fingerprint } from '../exact/fingerprint.js';
import { RawStore } from '../catalog/raw-store.js';
import { DataStore, swapInRebuild } from '../exact/lmdb.js';
import { Engine } from './engine.js';
import { TrackDecoder } from './track-decoder.js';
import { pool } from '../base/pool.js';

export interface RebuildSummary {
  tracks: number;
  audioSeconds: number;
  elapsedSeconds: number;
}

export async function rebuildIndex(config: Config, onProgress?: (done: number, total: number) => void): Promise<RebuildSummary> {
  const started = performance.now();
  const db = await openDatabase(config);
  try {
    await migrate(db.sql);
    const { tracks } = await new Catalog(db.sql).list();
    const raw = new RawStore(config.dataDir);
    const store = DataStore.open(config.dataDir, 'rebuild');
    let audioSeconds = 0;
    try {
      const index = new FingerprintIndex(store);
      let batch: { track: number; fp: Fingerprint }[] = [];
      let postings = 0;
      const flush = () => {
        const b = batch;
        batch = [];
        postings = 0;
        store.transaction(() => index.add(b));
      };
      let done = 0;
      const decoder = new TrackDecoder(config);
      try {
        await pool(tracks, decoder.capacity, async (t) => {
          const { pcm, fp } = await decoder.decode(raw.absolute(t.raw_path), t.file_name);
          audioSeconds += pcm.length / SAMPLE_RATE;
          batch.push({ track: t.fpId, fp });
          postings += fp.hashes.length;
          if (postings >= config.ingestBatchPostings) flush();
          onProgress?.(++done, tracks.length);
        });
      } finally {
        await decoder.close();
      }
      flush();
    } finally {
      await store.close();
    }
    swapInRebuild(config.dataDir);
    return { tracks: tracks.length, audioSeconds, elapsedSeconds: (performance.now() - started) / 1000 };
  } finally {
    await db.close();
  }
}

export async function rebuildVibe(
  config: Config,
  onProgress?: (done: number, total: number) => void,
): Promise<RebuildSummary & { vectors: number; model: string }> {
  const started = performance.now();
  const engine = await Engine.open(config, { vibe: 'replace' });
  try {
    const r = await engine.reembed(onProgress);
    return { ...r, elapsedSeconds: (performance.now() - started) / 1000 };
  } finally {
    await engine.close();
  }
}
