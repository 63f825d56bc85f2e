// The matching threads: live sessions' exact lane (decode, fingerprint, votes, decisions) and
// uploaded clips' decode and match run in a few worker threads, so that they use every core while
// the event loop keeps the sockets, HTTP, the limits and the catalog. A session stays on the
// thread it was given; a session or a clip goes to the thread with the least work then. A thread
// that dies fails only its own sessions and clips, and is replaced.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { Channel } from '../base/channel.js';
import { AppError } from '../base/errors.js';
import { log } from '../base/log.js';
import type { Match } from './matcher.js';
import type { LiveMatchEvents, LiveMatchOptions } from './live-match.js';
import type { ClipOptions, FromWorker, MatchWorkerData, ToWorker } from './match-worker.js';

/** One session's exact lane, wherever it runs. */
export interface LiveMatchHandle {
  audio(chunk: Uint8Array): void;
  /** No more audio: a last step with `ended` follows. */
  stop(): void;
  /** Drops the session at once: nothing more is delivered. */
  kill(): void;
}

/** An uploaded clip, decoded. */
export interface DecodedClip {
  /** 16 kHz mono PCM, when asked for (`keepPcm`). */
  pcm?: Float32Array;
  /** Its matches, when asked for (`exact`): they come after the decoding. */
  matches?: Promise<Match[]>;
}

interface Thread {
  worker: Worker;
  channel: Channel<ToWorker, FromWorker>;
  /** Open streams of each kind, for the load and the stats. */
  sessions: Set<number>;
  clips: Set<number>;
}

export interface MatchThreadStats {
  /** Live sessions on each thread. */
  sessions: number[];
  /** Clips being decoded or matched on each thread. */
  clips: number[];
}

export class MatchThreads {
  private readonly threads: Thread[] = [];
  private closing = false;

  constructor(
    private readonly data: MatchWorkerData,
    count = os.availableParallelism(),
  ) {
    for (let i = 0; i < count; i++) this.threads.push(this.spawn());
  }

  open(options: LiveMatchOptions, events: LiveMatchEvents): LiveMatchHandle {
    const thread = this.leastBusy();
    const { channel, sessions } = thread;
    const id = channel.open(
      { op: 'open', options },
      {
        reply: (m, last) => {
          if (last) sessions.delete(id);
          if ('step' in m) events.step(m.step);
        },
        error: (e) => {
          sessions.delete(id);
          events.error(e);
        },
      },
    );
    sessions.add(id);
    return {
      audio: (chunk) => {
        // A socket's chunk may share its memory with others: the thread gets a copy it owns.
        const bytes = new Uint8Array(chunk).buffer;
        channel.send(id, { op: 'audio', bytes }, [bytes]);
      },
      stop: () => channel.send(id, { op: 'stop' }),
      kill: () => {
        channel.send(id, { op: 'kill' });
        channel.forget(id);
        sessions.delete(id);
      },
    };
  }

  /**
   * Decodes an uploaded file saved at `file` in a thread and, with `exact`, matches it there.
   * Rejects with the decoding's typed error. The thread is done with the file once the decoded
   * clip comes back.
   */
  clip(file: string, options: ClipOptions): Promise<DecodedClip> {
    const { channel, clips } = this.leastBusy();
    return new Promise((resolve, reject) => {
      let matches: { resolve(m: Match[]): void; reject(e: AppError): void } | undefined;
      const id = channel.open(
        { op: 'clip', file, options },
        {
          reply: (m, last) => {
            if (last) clips.delete(id);
            if ('decoded' in m) {
              const found = options.exact ? new Promise<Match[]>((res, rej) => (matches = { resolve: res, reject: rej })) : undefined;
              resolve({ ...(m.decoded.pcm ? { pcm: m.decoded.pcm } : {}), ...(found ? { matches: found } : {}) });
            } else if ('matches' in m) matches?.resolve(m.matches);
          },
          error: (e) => {
            clips.delete(id);
            if (matches) matches.reject(e);
            else reject(e);
          },
        },
      );
      clips.add(id);
    });
  }

  stats(): MatchThreadStats {
    return { sessions: this.threads.map((t) => t.sessions.size), clips: this.threads.map((t) => t.clips.size) };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private leastBusy(): Thread {
    return this.threads.reduce((a, b) => (b.channel.size() < a.channel.size() ? b : a));
  }

  private spawn(): Thread {
    const worker = new Worker(new URL('./match-worker.js', import.meta.url), { workerData: this.data });
    const thread: Thread = { worker, channel: new Channel(worker), sessions: new Set(), clips: new Set() };
    worker.on('error', (e) => log.error('matching thread failed', { error: String(e) }));
    worker.on('exit', (code) => {
      if (this.closing) return;
      log.error('matching thread exited; its sessions and clips end', { code, sessions: thread.sessions.size, clips: thread.clips.size });
      this.threads[this.threads.indexOf(thread)] = this.spawn();
      thread.channel.failAll(new AppError('INTERNAL', 'the matching thread of this request failed'));
    });
    worker.unref();
    return thread;
  }
}
