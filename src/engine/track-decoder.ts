// Catalog files decoded and fingerprinted in worker threads, for ingest and rebuild-index. On the
// event loop, the ffmpeg pipes stalled whenever it was busy with other work (a commit, the
// same-recording check, the next file's hashes): ffmpeg blocks once its pipe is full. In the
// threads the decoding keeps going meanwhile, so the cores stay busy.
import { Piscina } from 'piscina';
import type { Config } from '../base/config.js';
import { runTask } from '../base/channel.js';
import type { DecodedTrack, TrackTask } from './track-worker.js';

/** Files each thread has in flight: one decodes while the thread fingerprints another. */
const FILES_PER_THREAD = 2;

export class TrackDecoder {
  /** Started at the first file: an ingest of files already in the catalog decodes none. */
  private pool: Piscina | undefined;

  constructor(private readonly config: Pick<Config, 'concurrency' | 'ffmpegPath'>) {}

  /** How many files to hand it at once to keep every thread busy. */
  get capacity(): number {
    return this.config.concurrency * FILES_PER_THREAD;
  }

  /** A file's 16 kHz mono PCM and its index fingerprint; decoding errors are typed. */
  async decode(file: string, label: string): Promise<DecodedTrack> {
    this.pool ??= new Piscina({
      filename: new URL('./track-worker.js', import.meta.url).href,
      minThreads: this.config.concurrency,
      maxThreads: this.config.concurrency,
      concurrentTasksPerWorker: FILES_PER_THREAD,
    });
    return runTask<TrackTask, DecodedTrack>(this.pool, { file, label, ffmpegPath: this.config.ffmpegPath });
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}
