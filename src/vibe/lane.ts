// The vibe lane: an embedder and a vector store, and what turns raw model outputs into the
// vectors the store compares (measured by bench/vibe.ts). Ingest asks it for a track's points,
// clip search and live windows ask it for the nearest tracks.
import type { Config } from '../config.js';
import { log } from '../log.js';
import { SAMPLE_RATE } from '../pipeline/decode.js';
import { openEmbedder, type ChunkEmbedding, type Embedder, type Embedding } from './embedder.js';
import { searchVector } from './similarity.js';
import { assertSpace, type VectorPoint, type VectorSpace, type VectorStore } from './vector-store.js';

/** A track's embeddings as ingest computes them. */
export interface TrackEmbeddings {
  chunks: ChunkEmbedding[];
  track: Embedding;
}

export interface VibeHit {
  fpId: number;
  /** Cosine similarity clamped to [0, 1]. */
  similarity: number;
}

/** Top tags shown with a vibe match. */
const SHOWN_TAGS = 3;
/** Chunk neighbours fetched per wanted track: one track's chunks crowd the nearest ones. */
const CHUNKS_PER_RESULT = 12;

export class VibeLane {
  readonly space: VectorSpace;

  constructor(
    readonly embedder: Embedder,
    readonly store: VectorStore,
  ) {
    this.space = { id: embedder.model.id, dim: embedder.model.dim };
  }

  /** The store's vectors for one track. */
  points(track: { id: string; fpId: number }, e: TrackEmbeddings): VectorPoint[] {
    return [
      { fpId: track.fpId, trackId: track.id, kind: 'track', startSeconds: 0, vector: searchVector(e.track) },
      ...e.chunks.map((c) => ({ fpId: track.fpId, trackId: track.id, kind: 'chunk' as const, startSeconds: c.startSeconds, vector: searchVector(c) })),
    ];
  }

  /** The names of the strongest tags of an embedding, strongest first. */
  topTags(e: Embedding): string[] {
    const names = this.embedder.model.tagNames;
    return [...e.tags]
      .map((p, i) => ({ p, i }))
      .sort((a, b) => b.p - a.p)
      .slice(0, Math.min(SHOWN_TAGS, names.length))
      .map(({ i }) => names[i]!);
  }

  /**
   * The catalog tracks whose chunks sound most like a clip, best first: a track scores the
   * similarity of its closest chunk, so a track that only partly sounds alike still shows.
   */
  async nearest(e: Embedding, k: number): Promise<VibeHit[]> {
    const v = searchVector(e);
    const best = new Map<number, number>();
    // Widen the search until k tracks show or every chunk was seen.
    for (let n = k * CHUNKS_PER_RESULT; ; n *= 4) {
      const hits = await this.store.search(this.space, v, 'chunk', n);
      best.clear();
      for (const h of hits) if (!best.has(h.fpId)) best.set(h.fpId, h.cosine);
      if (best.size >= k || hits.length < n) break;
    }
    return [...best.entries()]
      .map(([fpId, cos]) => ({ fpId, similarity: Math.min(1, Math.max(0, cos)) }))
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, k);
  }

  async close(): Promise<void> {
    await this.embedder.close();
  }
}

/**
 * The configured lane, or why there is none. The store is checked against the model: vectors of
 * another model are refused (INDEX_MISMATCH) unless `forRebuild`, which replaces them.
 */
export async function openVibeLane(config: Config, store: VectorStore, forRebuild = false): Promise<{ lane: VibeLane } | { lane: undefined; reason: string }> {
  if (config.vibeModel === 'off') return { lane: undefined, reason: 'the vibe lane is off (AUDIO_IDENT_VIBE_MODEL=off)' };
  const opened = await openEmbedder(config);
  if (!opened.embedder) {
    log.warn('vibe lane unavailable', { reason: opened.reason });
    return { lane: undefined, reason: opened.reason };
  }
  if (opened.embedder.model.sampleRate !== SAMPLE_RATE) {
    // Ingest, search and live sessions decode to the fingerprints' rate; a model at another rate
    // (CLAP's 48 kHz) would need its own decode of every input.
    await opened.embedder.close();
    const reason = `${opened.embedder.model.id} takes ${opened.embedder.model.sampleRate} Hz audio; the lane feeds it ${SAMPLE_RATE} Hz only`;
    log.warn('vibe lane unavailable', { reason });
    return { lane: undefined, reason };
  }
  const lane = new VibeLane(opened.embedder, store);
  if (!forRebuild) {
    try {
      assertSpace(await store.space(), lane.space, store.backend === 'usearch' ? 'the data dir' : 'Qdrant');
    } catch (e) {
      await lane.close();
      throw e;
    }
  }
  return { lane };
}
