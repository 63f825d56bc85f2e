// The vibe lane's vector stores: one interface, two backends (usearch-store.ts embedded under the
// data dir, the default; qdrant-store.ts when QDRANT_URL is set). A store holds, per catalog
// track, one track vector and the vectors of its 10 s chunks, each with the track and the chunk's
// start, and the embedding space they belong to. Vectors of two spaces never mix: a store opened
// for another space refuses with the command that re-embeds the catalog. A store compares the
// vectors of a kind by cosine about their centre (centre.ts): it keeps the vectors as given and
// re-centres its index as the catalog's mean moves.
import type { Config } from '../../base/config.js';
import { AppError } from '../../base/errors.js';

export type VectorKind = 'track' | 'chunk';

/** What the vectors of a store are: the model (and how its outputs were turned into vectors). */
export interface VectorSpace {
  id: string;
  dim: number;
}

export interface VectorPoint {
  /** The track's catalog number (its fingerprint-index number). */
  fpId: number;
  /** The track's catalog id. */
  trackId: string;
  kind: VectorKind;
  /** Chunks: where the chunk starts in the track; 0 for the track vector. */
  startSeconds: number;
  vector: Float32Array;
}

export interface VectorHit {
  fpId: number;
  kind: VectorKind;
  startSeconds: number;
  /** Cosine similarity about the centre. */
  cosine: number;
}

/** A vector as the model gave it, or one already centred the store's way (an expanded query). */
export interface Query {
  vector: Float32Array;
  centred?: boolean;
}

export interface Found {
  /** The query as compared: less the centre, unit length. */
  query: Float32Array;
  /** Most similar first. */
  hits: VectorHit[];
}

export interface VectorStore {
  backend(): 'usearch' | 'qdrant';
  /** The space of the stored vectors; undefined while the store is empty. */
  space(): Promise<VectorSpace | undefined>;
  /**
   * Adds the vectors of whole tracks; all land or none. Refuses vectors of another space than
   * the stored ones (an empty store takes on the space of its first vectors).
   */
  add(space: VectorSpace, points: VectorPoint[]): Promise<void>;
  /** Removes every vector of these tracks (tracks without vectors are ignored). */
  removeTracks(fpIds: number[]): Promise<void>;
  /** The `k` nearest vectors of one kind. */
  search(space: VectorSpace, query: Query, kind: VectorKind, k: number): Promise<Found>;
  /** The stored vectors of some hits as they are compared: less the centre, unit length. */
  compared(space: VectorSpace, hits: VectorHit[]): Promise<Float32Array[]>;
  /** The catalog numbers of the tracks that have vectors. */
  trackNumbers(): Promise<number[]>;
  /** Vectors held, by kind. */
  count(): Promise<Record<VectorKind, number>>;
  /** Replaces every vector by these (a re-embedding); the embedded store does it atomically. */
  replaceAll(space: VectorSpace, points: VectorPoint[]): Promise<void>;
  /** Removes every vector and the space. */
  clear(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Point keys carry their payload: track number in the high bits, then a slot (0: the track
 * vector; 1 + the chunk's start in tenths of a second). Both backends use them as point ids, so
 * a point's identity is the same everywhere and re-adding a track overwrites, never duplicates.
 */
const SLOT_BITS = 21; // 2^21 tenths of a second: chunks up to 58 h into a track
const SLOTS = 2 ** SLOT_BITS;

export function pointKey(fpId: number, kind: VectorKind, startSeconds: number): number {
  const slot = kind === 'track' ? 0 : 1 + Math.round(startSeconds * 10);
  if (slot >= SLOTS) throw new AppError('INVALID_ARGUMENT', `chunk start ${startSeconds} s is beyond what a vector key holds`);
  return fpId * SLOTS + slot;
}

export function parseKey(key: number): { fpId: number; kind: VectorKind; startSeconds: number } {
  const fpId = Math.floor(key / SLOTS);
  const slot = key - fpId * SLOTS;
  return slot === 0 ? { fpId, kind: 'track', startSeconds: 0 } : { fpId, kind: 'chunk', startSeconds: (slot - 1) / 10 };
}

/** Refuses vectors or queries of a space other than the stored one. */
export function assertSpace(stored: VectorSpace | undefined, wanted: VectorSpace, where: string): void {
  if (stored && (stored.id !== wanted.id || stored.dim !== wanted.dim)) {
    throw new AppError(
      'INDEX_MISMATCH',
      `the vibe vectors in ${where} are of ${stored.id} (${stored.dim}-d), not of the configured ${wanted.id} (${wanted.dim}-d): ` +
        'run `audio-ident rebuild-index --vibe` to re-embed the catalog',
    );
  }
}

/** The configured store: Qdrant when QDRANT_URL is set, else the embedded index under the data dir. */
export async function openVectorStore(config: Config): Promise<VectorStore> {
  if (config.qdrantUrl) {
    const { QdrantStore } = await import('./qdrant-store.js');
    return QdrantStore.open({ url: config.qdrantUrl, apiKey: config.qdrantApiKey, collection: config.qdrantCollection });
  }
  const { UsearchStore } = await import('./usearch-store.js');
  return UsearchStore.open(config.dataDir);
}
