// The vibe lane: an embedder and a vector store, and how a clip's nearest tracks are found
// (measured by bench/vibe.ts). Ingest asks it for a track's points, clip search and live windows
// ask it for the nearest tracks.
//
// The vectors are the model's as they are (MusiCNN: its batch-normalised pooling layer); the store
// compares them about the catalog's centre. Search expands the query once: the query plus the
// closest chunks of its nearest tracks, each weighted by its similarity cubed, then searched
// again. bench:vibe measured both steps against the plain 200-d embedding and every alternative
// tried (docs/benchmarks.md, the vibe bench): the centred pooling layer gains about +0.05 precision@10 on
// whole tracks and 10 s chunks, the expansion adds up to +0.015 more.
import type { Config } from '../base/config.js';
import { log } from '../base/log.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import { openEmbedder, type ChunkEmbedding, type Embedder, type Embedding } from './embedder.js';
import { unit } from './store/centre.js';
import { assertSpace, type Query, type VectorHit, type VectorKind, type VectorPoint, type VectorSpace, type VectorStore } from './store/vector-store.js';

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
/** Query expansion: how many nearest tracks' closest chunks join the query, and the power of their similarity that weighs them. */
const EXPANSION = { tracks: 3, power: 3 } as const;

export class VibeLane {
  private readonly vectorSpace: VectorSpace;

  constructor(
    private readonly embedder: Embedder,
    private readonly store: VectorStore,
  ) {
    this.vectorSpace = { id: embedder.model().id, dim: embedder.model().dim };
  }

  /** The model's vector space: its id is stored with every vector. */
  space(): VectorSpace {
    return this.vectorSpace;
  }

  /** A whole track's chunk and track embeddings, in the worker pool. */
  embedTrack(pcm: Float32Array): Promise<TrackEmbeddings> {
    return this.embedder.embedTrack(pcm);
  }

  /** The catalog tracks nearest to a clip of PCM at the model's rate, best first. */
  async search(pcm: Float32Array, k: number): Promise<VibeHit[]> {
    return this.nearest(await this.embedder.embedClip(pcm), k);
  }

  /** The store's vectors for one track. */
  points(track: { id: string; fpId: number }, e: TrackEmbeddings): VectorPoint[] {
    return [
      { fpId: track.fpId, trackId: track.id, kind: 'track', startSeconds: 0, vector: e.track.vector },
      ...e.chunks.map((c) => ({ fpId: track.fpId, trackId: track.id, kind: 'chunk' as const, startSeconds: c.startSeconds, vector: c.vector })),
    ];
  }

  /** The names of the strongest tags of an embedding, strongest first. */
  topTags(e: Embedding): string[] {
    const names = this.embedder.model().tagNames;
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
  private nearest(e: Embedding, k: number): Promise<VibeHit[]> {
    return nearestTracks(this.store, this.vectorSpace, e.vector, { kind: 'chunk', k });
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
  if (opened.embedder.model().sampleRate !== SAMPLE_RATE) {
    // Ingest, search and live sessions decode to the fingerprints' rate; a model at another rate
    // (CLAP's 48 kHz) would need its own decode of every input.
    await opened.embedder.close();
    const reason = `${opened.embedder.model().id} takes ${opened.embedder.model().sampleRate} Hz audio; the lane feeds it ${SAMPLE_RATE} Hz only`;
    log.warn('vibe lane unavailable', { reason });
    return { lane: undefined, reason };
  }
  const lane = new VibeLane(opened.embedder, store);
  if (!forRebuild) {
    try {
      assertSpace(await store.space(), lane.space(), store.backend() === 'usearch' ? 'the data dir' : 'Qdrant');
    } catch (e) {
      await lane.close();
      throw e;
    }
  }
  return { lane };
}

/**
 * The `k` tracks nearest to a vector by their closest vector of `kind`, query expanded.
 * `without` leaves a track out of both searches (bench:vibe: a catalog track as the query).
 */
export async function nearestTracks(
  store: VectorStore,
  space: VectorSpace,
  vector: Float32Array,
  opts: { kind: VectorKind; k: number; without?: number },
): Promise<VibeHit[]> {
  const first = await closestPerTrack(store, space, { vector }, opts.kind, Math.max(opts.k, EXPANSION.tracks), opts.without);
  const expanded = Float32Array.from(first.query);
  const neighbours = first.hits.slice(0, EXPANSION.tracks);
  const vectors = await store.compared(space, neighbours);
  neighbours.forEach((h, j) => {
    const w = Math.max(h.cosine, 0) ** EXPANSION.power;
    for (let i = 0; i < expanded.length; i++) expanded[i]! += w * vectors[j]![i]!;
  });
  const second = await closestPerTrack(store, space, { vector: unit(expanded), centred: true }, opts.kind, opts.k, opts.without);
  return second.hits.slice(0, opts.k).map((h) => ({ fpId: h.fpId, similarity: Math.min(1, Math.max(0, h.cosine)) }));
}

/** Each track's closest vector of a kind, best first, for at least `k` tracks where the store has them. */
async function closestPerTrack(
  store: VectorStore,
  space: VectorSpace,
  query: Query,
  kind: VectorKind,
  k: number,
  without: number | undefined,
): Promise<{ query: Float32Array; hits: VectorHit[] }> {
  // Widen the search until k tracks show or every vector was seen.
  for (let n = k * (kind === 'chunk' ? CHUNKS_PER_RESULT : 1) + (without === undefined ? 0 : CHUNKS_PER_RESULT); ; n *= 4) {
    const found = await store.search(space, query, kind, n);
    const best = new Map<number, VectorHit>();
    for (const h of found.hits) if (h.fpId !== without && !best.has(h.fpId)) best.set(h.fpId, h);
    if (best.size >= k || found.hits.length < n) return { query: found.query, hits: [...best.values()] };
  }
}
