// The listening threads: each session's exact lane (decode, fingerprint, votes, decisions) runs
// in one of a few worker threads, so that live sessions use every core while this thread keeps
// the sockets, the limits and the catalog. A session stays on the thread it was given (the one
// with the fewest sessions then). A thread that dies fails only its own sessions and is replaced.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { AppError, isErrorCode } from '../errors.js';
import { log } from '../log.js';
import type { LiveMatchEvents, LiveMatchOptions } from './live-match.js';
import type { FromWorker, ListenWorkerData, ToWorker } from './listen-worker.js';

/** One session's exact lane, wherever it runs. */
export interface LiveMatchHandle {
  audio(chunk: Uint8Array): void;
  /** No more audio: a last step with `ended` follows. */
  stop(): void;
  /** Drops the session at once: nothing more is delivered. */
  kill(): void;
}

interface Thread {
  worker: Worker;
  sessions: Map<number, LiveMatchEvents>;
}

export class ListenThreads {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closing = false;

  constructor(
    private readonly data: ListenWorkerData,
    count = os.availableParallelism(),
  ) {
    for (let i = 0; i < count; i++) this.threads.push(this.spawn());
  }

  open(options: LiveMatchOptions, events: LiveMatchEvents): LiveMatchHandle {
    const thread = this.threads.reduce((a, b) => (b.sessions.size < a.sessions.size ? b : a));
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

  /** Sessions open on each thread. */
  stats(): number[] {
    return this.threads.map((t) => t.sessions.size);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private spawn(): Thread {
    const worker = new Worker(new URL('./listen-worker.js', import.meta.url), { workerData: this.data });
    const thread: Thread = { worker, sessions: new Map() };
    worker.on('message', (msg: FromWorker) => {
      const events = thread.sessions.get(msg.id);
      if (!events) return; // killed meanwhile
      if ('error' in msg) {
        thread.sessions.delete(msg.id);
        events.error(new AppError(isErrorCode(msg.error.code) ? msg.error.code : 'INTERNAL', msg.error.message));
        return;
      }
      if (msg.step.ended) thread.sessions.delete(msg.id);
      events.step(msg.step);
    });
    worker.on('error', (e) => log.error('listening thread failed', { error: String(e) }));
    worker.on('exit', (code) => {
      if (this.closing) return;
      log.error('listening thread exited; its sessions end', { code, sessions: thread.sessions.size });
      const lost = [...thread.sessions.values()];
      thread.sessions.clear();
      this.threads[this.threads.indexOf(thread)] = this.spawn();
      for (const events of lost) events.error(new AppError('INTERNAL', 'the listening thread of this session failed'));
    });
    worker.unref();
    return thread;
  }
}
