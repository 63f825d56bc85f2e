// Ingest: files and folders in; each new file is hashed, decoded (in parallel, one ffmpeg per
// core), fingerprinted, staged, and committed in batches. A file that fails is reported and
// skipped; the others go on.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../errors.js';
import type { Track } from './catalog.js';
import { decodeFile, detectFileFormat, SAMPLE_RATE } from './decode.js';
import type { Engine, PreparedTrack } from './engine.js';
import { MIN_QUERY_SECONDS } from './engine.js';
import { fingerprint } from './fingerprint.js';
import { sha256File } from './raw-store.js';
import { readTags } from './tags.js';

export type IngestOutcome =
  | { file: string; status: 'created'; track: Track }
  | { file: string; status: 'skipped'; track: Track }
  | { file: string; status: 'failed'; code: string; message: string };

export interface IngestProgress {
  done: number;
  total: number;
  audioSeconds: number;
  failed: number;
}

export interface IngestSummary {
  outcomes: IngestOutcome[];
  created: number;
  skipped: number;
  failed: number;
  audioSeconds: number;
  elapsedSeconds: number;
}

const AUDIO_EXTENSIONS = new Set(['.mp3', '.ogg', '.oga', '.opus', '.webm', '.m4a', '.mp4', '.aac', '.wav', '.flac']);
/** Postings per commit: large enough to amortise rewriting each touched key, small enough for memory. */
const BATCH_POSTINGS = 1_000_000;

/** Expands paths into audio files: folders recursively (by extension), files as given. */
export async function listAudioFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string, explicit: boolean): Promise<void> => {
    let s;
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

export async function ingestFiles(
  engine: Engine,
  files: string[],
  onProgress?: (p: IngestProgress) => void,
): Promise<IngestSummary> {
  const started = performance.now();
  const outcomes: IngestOutcome[] = new Array(files.length);
  const progress: IngestProgress = { done: 0, total: files.length, audioSeconds: 0, failed: 0 };
  const inFlight = new Map<string, number>(); // sha -> index of the file that is ingesting it
  let batch: { index: number; item: PreparedTrack }[] = [];
  let batchPostings = 0;
  let committing: Promise<void> = Promise.resolve();

  const flush = () => {
    const items = batch;
    batch = [];
    batchPostings = 0;
    committing = committing.then(async () => {
      try {
        const tracks = await engine.commit(items.map((b) => b.item));
        tracks.forEach((track, i) => {
          outcomes[items[i]!.index] = { file: files[items[i]!.index]!, status: 'created', track };
        });
      } catch (e) {
        // Nothing of the batch committed: drop its staged files and report each file.
        for (const { index, item } of items) {
          await engine.raw.discard(item.staged);
          outcomes[index] = { file: files[index]!, status: 'failed', code: 'INTERNAL', message: (e as Error).message };
          progress.failed++;
        }
      }
    });
    return committing;
  };

  const prepare = async (index: number): Promise<void> => {
    const file = files[index]!;
    try {
      const format = await detectFileFormat(file);
      const sha = await sha256File(file);
      const existing = engine.catalog.getBySha(sha);
      if (existing) {
        outcomes[index] = { file, status: 'skipped', track: existing };
        return;
      }
      const twin = inFlight.get(sha);
      if (twin !== undefined) {
        outcomes[index] = { file, status: 'failed', code: 'DUPLICATE_IN_BATCH', message: `same content as ${files[twin]}` };
        return;
      }
      inFlight.set(sha, index);
      const [pcm, tags, size] = await Promise.all([
        decodeFile(file, { ffmpegPath: engine.config.ffmpegPath }),
        readTags(file),
        stat(file).then((s) => s.size),
      ]);
      const seconds = pcm.length / SAMPLE_RATE;
      if (seconds < MIN_QUERY_SECONDS) {
        throw new AppError('AUDIO_TOO_SHORT', `${path.basename(file)}: ${seconds.toFixed(1)} s of audio; at least ${MIN_QUERY_SECONDS} s are needed`);
      }
      const fp = fingerprint(pcm, 'index');
      const named = path.extname(file).toLowerCase();
      const ext = AUDIO_EXTENSIONS.has(named) ? named.slice(1) : format;
      const staged = await engine.raw.stage(file, sha, ext);
      const meta = {
        ...tags,
        duration_seconds: Math.round(seconds * 1000) / 1000,
        file_name: path.basename(file),
        sha256: sha,
        format,
        file_size_bytes: size,
        raw_path: engine.raw.relativePath(sha, ext),
      };
      batch.push({ index, item: { meta, fp, staged } });
      batchPostings += fp.hashes.length;
      progress.audioSeconds += seconds;
      if (batchPostings >= BATCH_POSTINGS) await flush();
    } catch (e) {
      const code = e instanceof AppError ? e.code : 'INTERNAL';
      outcomes[index] = { file, status: 'failed', code, message: (e as Error).message };
      progress.failed++;
    } finally {
      progress.done++;
      onProgress?.({ ...progress });
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < files.length) await prepare(next++);
  };
  await Promise.all(Array.from({ length: Math.min(engine.config.concurrency, files.length) }, worker));
  await flush();

  const list = outcomes.filter(Boolean);
  return {
    outcomes: list,
    created: list.filter((o) => o.status === 'created').length,
    skipped: list.filter((o) => o.status === 'skipped').length,
    failed: list.filter((o) => o.status === 'failed').length,
    audioSeconds: progress.audioSeconds,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}
