// Ingest: files and folders in; each new file is hashed, decoded and fingerprinted (in worker
// threads, two files per core in flight), checked against the catalog for another copy of the
// same recording, embedded (when the vibe lane is on), staged, and committed in batches. A file
// that fails is reported and skipped; the others go on.
import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../base/config.js';
import { AppError, publicError, type ErrorCode } from '../base/errors.js';
import type { Mutex } from '../base/lock.js';
import { pool } from '../base/pool.js';
import { storageError } from '../base/storage.js';
import { detectFileFormat, SAMPLE_RATE } from '../audio/decode.js';
import { readTags } from '../audio/tags.js';
import { MIN_QUERY_SECONDS } from '../exact/clip-match.js';
import type { TrackEmbeddings } from '../vibe/lane.js';
import type { Catalog, Track } from '../catalog/catalog.js';
import { sha256File, type RawStore } from '../catalog/raw-store.js';
import type { PreparedTrack, SameRecording } from './engine.js';
import { TrackDecoder } from './track-decoder.js';

/** A path, or a path with the name the file should be known by (an upload's own name). */
export type IngestInput = string | { path: string; name: string };

export type IngestOutcome =
  | { file: string; status: 'created'; track: Track }
  | { file: string; status: 'duplicate'; reason: 'same_file' | 'same_recording'; track: Track; confidence: number }
  | { file: string; status: 'failed'; code: ErrorCode; message: string };

export interface IngestProgress {
  done: number;
  total: number;
  audioSeconds: number;
  failed: number;
}

export interface IngestSummary {
  outcomes: IngestOutcome[];
  created: number;
  /** Already in the catalog: the same file ... */
  skipped: number;
  /** ... or another copy of the same recording. */
  sameRecording: number;
  failed: number;
  audioSeconds: number;
  elapsedSeconds: number;
}

const AUDIO_EXTENSIONS = new Set(['.mp3', '.ogg', '.oga', '.opus', '.webm', '.m4a', '.mp4', '.aac', '.wav', '.flac']);

/** Expands paths into audio files: folders recursively (by extension), files as given. */
export async function listAudioFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string, explicit: boolean): Promise<void> => {
    let s: Stats;
    try {
      s = await stat(p);
    } catch {
      if (explicit) out.push(p); // reported as FILE_NOT_FOUND by the ingest
      return;
    }
    if (s.isDirectory()) {
      const entries = (await readdir(p)).sort();
      for (const e of entries) if (!e.startsWith('.')) await walk(path.join(p, e), false);
    } else if (explicit || AUDIO_EXTENSIONS.has(path.extname(p).toLowerCase())) {
      out.push(p);
    }
  };
  for (const p of paths) await walk(path.resolve(p), true);
  return out;
}

/** The parts of the engine an ingest works with. */
export interface IngestParts {
  config: Pick<Config, 'concurrency' | 'ffmpegPath' | 'ingestBatchPostings' | 'dataDir'>;
  catalog: Catalog;
  raw: RawStore;
  /** The vibe lane's embedding of a track, when it runs. */
  embed: ((pcm: Float32Array) => Promise<TrackEmbeddings>) | undefined;
  findSameRecording(pcm: Float32Array): Promise<SameRecording | undefined>;
  commit(items: PreparedTrack[]): Promise<(Track | null)[]>;
  /**
   * Held by one ingest at a time from its first check against the catalog to its last commit, so
   * that concurrent ingests (uploads) of one file or one recording give one track.
   */
  gate: Mutex;
}

export async function ingestFiles(parts: IngestParts, inputs: IngestInput[], onProgress?: (p: IngestProgress) => void): Promise<IngestSummary> {
  const started = performance.now();
  const files = inputs.map((i) => (typeof i === 'string' ? i : i.path));
  const names = inputs.map((i) => (typeof i === 'string' ? path.basename(i) : i.name));
  const outcomes: IngestOutcome[] = new Array(files.length);
  const progress: IngestProgress = { done: 0, total: files.length, audioSeconds: 0, failed: 0 };
  const inFlight = new Map<string, number>(); // sha -> index of the file that is ingesting it
  let batch: { index: number; item: PreparedTrack }[] = [];
  let batchPostings = 0;
  let committing: Promise<void> = Promise.resolve();
  const decoder = new TrackDecoder(parts.config);
  // Decoding runs before the gate, in parallel with other ingests; what decides on duplicates runs after.
  let gate: Promise<() => void> | undefined;
  const exclusive = () => (gate ??= parts.gate.acquire());

  const flush = () => {
    const items = batch;
    batch = [];
    batchPostings = 0;
    committing = committing.then(async () => {
      try {
        const tracks = await parts.commit(items.map((b) => b.item));
        tracks.forEach((track, i) => {
          const index = items[i]!.index;
          outcomes[index] = track
            ? { file: files[index]!, status: 'created', track }
            : { file: files[index]!, status: 'failed', code: 'DUPLICATE_IN_PROGRESS', message: 'the same file is being ingested by another process' };
        });
      } catch (e) {
        // Nothing of the batch committed: drop its staged files and report each file.
        const { code, message } = publicError(storageError(e, parts.config.dataDir) ?? e, { during: 'ingest commit' });
        for (const { index, item } of items) {
          if (item.staged) await parts.raw.discard(item.staged);
          outcomes[index] = { file: files[index]!, status: 'failed', code, message };
          progress.failed++;
        }
      }
    });
    return committing;
  };

  const prepare = async (index: number): Promise<void> => {
    const file = files[index]!;
    try {
      const format = await detectFileFormat(file, names[index]);
      const sha = await sha256File(file);
      const existing = await parts.catalog.getBySha(sha);
      if (existing) {
        outcomes[index] = { file, status: 'duplicate', reason: 'same_file', track: existing, confidence: 1 };
        return;
      }
      const twin = inFlight.get(sha);
      if (twin !== undefined) {
        outcomes[index] = { file, status: 'failed', code: 'DUPLICATE_IN_BATCH', message: `same content as ${files[twin]}` };
        return;
      }
      inFlight.set(sha, index);
      const [{ pcm, fp }, tags, size] = await Promise.all([decoder.decode(file, names[index]!), readTags(file, names[index]), stat(file).then((s) => s.size)]);
      const seconds = pcm.length / SAMPLE_RATE;
      if (seconds < MIN_QUERY_SECONDS) {
        throw new AppError('AUDIO_TOO_SHORT', `${names[index]}: ${seconds.toFixed(1)} s of audio; at least ${MIN_QUERY_SECONDS} s are needed`);
      }
      await exclusive();
      // Another ingest may have committed this file while it was decoded here.
      const committed = await parts.catalog.getBySha(sha);
      if (committed) {
        outcomes[index] = { file, status: 'duplicate', reason: 'same_file', track: committed, confidence: 1 };
        return;
      }
      const same = await parts.findSameRecording(pcm);
      if (same) {
        await parts.catalog.reportDuplicate({
          file_name: names[index]!,
          sha256: sha,
          duplicate_of: same.track.id,
          reason: 'same_recording',
          confidence: same.confidence,
        });
        outcomes[index] = { file, status: 'duplicate', reason: 'same_recording', track: same.track, confidence: same.confidence };
        return;
      }
      // The embedding runs in its worker pool while the file is staged.
      const vibe = parts.embed?.(pcm);
      vibe?.catch(() => undefined); // awaited below; a staging error must not leave it unhandled
      const named = path.extname(names[index]!).toLowerCase();
      const ext = AUDIO_EXTENSIONS.has(named) ? named.slice(1) : format;
      const staged = await parts.raw.stage(file, sha, ext);
      const meta = {
        ...tags,
        duration_seconds: Math.round(seconds * 1000) / 1000,
        file_name: names[index]!,
        sha256: sha,
        format,
        file_size_bytes: size,
        raw_path: parts.raw.relativePath(sha, ext),
      };
      // Awaited before the push: `batch.push(...)` would hold the array of the moment, which
      // another file's flush may commit and replace while the embedding finishes.
      const embeddings = await vibe;
      batch.push({ index, item: { meta, fp, staged, vibe: embeddings } });
      batchPostings += fp.hashes.length;
      progress.audioSeconds += seconds;
      if (batchPostings >= parts.config.ingestBatchPostings) await flush();
    } catch (e) {
      const { code, message } = publicError(storageError(e, parts.config.dataDir) ?? e, { file });
      outcomes[index] = { file, status: 'failed', code, message };
      progress.failed++;
    } finally {
      progress.done++;
      onProgress?.({ ...progress });
    }
  };

  try {
    try {
      await pool(files, decoder.capacity, (_, i) => prepare(i));
    } finally {
      await decoder.close();
    }
    await flush();
  } finally {
    if (gate) (await gate)();
  }

  const list = outcomes.filter(Boolean);
  return {
    outcomes: list,
    created: list.filter((o) => o.status === 'created').length,
    skipped: list.filter((o) => o.status === 'duplicate' && o.reason === 'same_file').length,
    sameRecording: list.filter((o) => o.status === 'duplicate' && o.reason === 'same_recording').length,
    failed: list.filter((o) => o.status === 'failed').length,
    audioSeconds: progress.audioSeconds,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}
