// The matching threads: live sessions' exact lane (decode, fingerprint, votes, decisions) and
// uploaded clips' decode and match run in a few worker threads, so that they use every core while
// the event loop keeps the sockets, HTTP, the limits and the catalog. A session stays on the
// thread it was given; a session or a clip goes to the thread with the least work then. A thread
// that dies fails only its own sessions and clips, and is replaced.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { AppError, isErrorCode } from '../base/errors.js';
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

interface PendingClip {
  exact: boolean;
  decoded(d: { pcm?: Float32Array }): void;
  matched(m: Match[]): void;
  failed(e: AppError): void;
}

interface Thread {
  worker: Worker;
  sessions: Map<number, LiveMatchEvents>;
  clips: Map<number, PendingClip>;
}

export interface MatchThreadStats {
  /** Live sessions on each thread. */
  sessions: number[];
  /** Clips being decoded or matched on each thread. */
  clips: number[];
}

export class MatchThreads {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closing = false;

  constructor(
    private readonly data: MatchWorkerData,
    count = os.availableParallelism(),
  ) {
    for (let i = 0; i < count; i++) this.threads.push(this.spawn());
  }

  open(options: LiveMatchOptions, events: LiveMatchEvents): LiveMatchHandle {
    const thread = this.leastBusy();
    const id = this.nextId++;
    thread.sessions.set(id, events);
    const post = (msg: ToWorker, transfer: ArrayBuffer[] = []) => {
      if (thread.sessions.has(id)) thread.worker.postMessage(msg, transfer);
    };
    post({ op: 'open', id, options });
    return {
      audio: (chunk) => {
        // A socket's chunk may share its memory with others: the thread gets a copy it owns.
        const bytes = new Uint8Array(chunk).buffer;
        post({ op: 'audio', id, bytes }, [bytes]);
      },
      stop: () => post({ op: 'stop', id }),
      kill: () => {
        post({ op: 'kill', id });
        thread.sessions.delete(id);
      },
    };
  }

  /**
   * Decodes an uploaded file in a thread (the bytes move there: `bytes` is detached after the
   * call) and, with `exact`, matches it there. Rejects with the decoding's typed error.
   */
  clip(bytes: ArrayBuffer, options: ClipOptions): Promise<DecodedClip> {
    const thread = this.leastBusy();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let matches: { resolve(m: Match[]): void; reject(e: AppError): void } | undefined;
      thread.clips.set(id, {
        exact: options.exact,
        decoded: ({ pcm }) => {
          const found = options.exact ? new Promise<Match[]>((res, rej) => (matches = { resolve: res, reject: rej })) : undefined;
          resolve({ ...(pcm ? { pcm } : {}), ...(found ? { matches: found } : {}) });
        },
        matched: (m) => matches?.resolve(m),
        failed: (e) => (matches ? matches.reject(e) : reject(e)),
      });
      thread.worker.postMessage({ op: 'clip', id, bytes, options } satisfies ToWorker, [bytes]);
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
    const load = (t: Thread) => t.sessions.size + t.clips.size;
    return this.threads.reduce((a, b) => (load(b) < load(a) ? b : a));
  }

  private spawn(): Thread {
    const worker = new Worker(new URL('./match-worker.js', import.meta.url), { workerData: this.data });
    const thread: Thread = { worker, sessions: new Map(), clips: new Map() };
    worker.on('message', (msg: FromWorker) => {
      const clip = thread.clips.get(msg.id);
      if (clip) return this.onClip(thread, clip, msg);
      const events = thread.sessions.get(msg.id);
      if (!events) return; // killed meanwhile
      if ('error' in msg) {
        thread.sessions.delete(msg.id);
        events.error(failure(msg.error));
        return;
      }
      if (!('step' in msg)) return;
      if (msg.step.ended) thread.sessions.delete(msg.id);
      events.step(msg.step);
    });
    worker.on('error', (e) => log.error('matching thread failed', { error: String(e) }));
    worker.on('exit', (code) => {
      if (this.closing) return;
      log.error('matching thread exited; its sessions and clips end', { code, sessions: thread.sessions.size, clips: thread.clips.size });
      const sessions = [...thread.sessions.values()];
      const clips = [...thread.clips.values()];
      thread.sessions.clear();
      thread.clips.clear();
      this.threads[this.threads.indexOf(thread)] = this.spawn();
      for (const events of sessions) events.error(new AppError('INTERNAL', 'the matching thread of this session failed'));
      for (const clip of clips) clip.failed(new AppError('INTERNAL', 'the matching thread of this search failed'));
    });
    worker.unref();
    return thread;
  }

  private onClip(thread: Thread, clip: PendingClip, msg: FromWorker): void {
    if ('error' in msg) {
      thread.clips.delete(msg.id);
      clip.failed(failure(msg.error));
    } else if ('decoded' in msg) {
      if (!clip.exact) thread.clips.delete(msg.id);
      clip.decoded(msg.decoded);
    } else if ('matches' in msg) {
      thread.clips.delete(msg.id);
      clip.matched(msg.matches);
    }
  }
}

function failure(e: { code: string; message: string }): AppError {
  return new AppError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message);
}
