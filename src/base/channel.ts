// The one way the event loop and its worker threads talk. A request opens a stream, which carries
// one reply or many (a live session's steps) and ends with a last reply or an error. An error
// crosses the boundary as its code and message, so an AppError arrives as the same AppError;
// anything else is logged in full where it happened and arrives as INTERNAL without its text.
// Raw worker_threads use Channel and servePort; piscina tasks use task and runTask.
import type { MessagePort, Transferable, Worker } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { AppError, isErrorCode, publicError, type ErrorCode } from './errors.js';

/** An error as it crosses a thread boundary: publicError's form, so INTERNAL ones are logged where they happen. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

/** What a thread sends back for a stream. */
type Reply<R> = { id: number; reply: R; last: boolean } | { id: number; error: WireError };
/** What the event loop sends a thread: a message on a stream. */
interface Request<Q> {
  id: number;
  msg: Q;
}

export function fromWire(w: WireError): AppError {
  // An INTERNAL error was logged in its thread, and its message is already the public one.
  return new AppError(isErrorCode(w.code) ? w.code : 'INTERNAL', w.message, { logged: true });
}

export interface StreamListener<R> {
  reply(r: R, last: boolean): void;
  error(e: AppError): void;
}

/** The event loop's side of one worker thread. */
export class Channel<Q, R> {
  private readonly streams = new Map<number, StreamListener<R>>();
  private nextId = 1;

  constructor(private readonly worker: Worker) {
    worker.on('message', (m: Reply<R>) => {
      const listener = this.streams.get(m.id);
      if (!listener) return; // closed meanwhile
      if ('error' in m) {
        this.streams.delete(m.id);
        listener.error(fromWire(m.error));
        return;
      }
      if (m.last) this.streams.delete(m.id);
      listener.reply(m.reply, m.last);
    });
  }

  /** Opens a stream with its first message; replies go to `listener` until the last or an error. */
  open(msg: Q, listener: StreamListener<R>, transfer: Transferable[] = []): number {
    const id = this.nextId++;
    this.streams.set(id, listener);
    this.worker.postMessage({ id, msg } satisfies Request<Q>, transfer);
    return id;
  }

  /** Another message on an open stream; false (and nothing sent) once it has ended. */
  send(id: number, msg: Q, transfer: Transferable[] = []): boolean {
    if (!this.streams.has(id)) return false;
    this.worker.postMessage({ id, msg } satisfies Request<Q>, transfer);
    return true;
  }

  /** Stops listening: what the thread still sends for this stream is dropped. */
  forget(id: number): void {
    this.streams.delete(id);
  }

  /** One request, one reply. */
  call(msg: Q, transfer: Transferable[] = []): Promise<R> {
    return new Promise((resolve, reject) => this.open(msg, { reply: resolve, error: reject }, transfer));
  }

  /** Streams still open. */
  size(): number {
    return this.streams.size;
  }

  /** Ends every open stream with `e` (the thread is gone). */
  failAll(e: AppError): void {
    const all = [...this.streams.values()];
    this.streams.clear();
    for (const l of all) l.error(e);
  }
}

/** A thread's side of its Channel. */
export interface ThreadPort<R> {
  reply(id: number, r: R, options?: { last?: boolean; transfer?: Transferable[] }): void;
  /** Ends a stream with an error (INTERNAL ones are logged here). */
  fail(id: number, e: unknown): void;
}

/**
 * Serves a Channel in a thread: each message goes to `handle` with its stream id. What `handle`
 * throws or rejects with ends that stream with the error.
 */
export function servePort<Q, R>(port: MessagePort, handle: (id: number, msg: Q, out: ThreadPort<R>) => void | Promise<void>): ThreadPort<R> {
  const out: ThreadPort<R> = {
    reply: (id, reply, o = {}) => {
      port.postMessage({ id, reply, last: o.last ?? true } satisfies Reply<R>, o.transfer ?? []);
    },
    fail: (id, e) => port.postMessage({ id, error: publicError(e, { stream: id }) } satisfies Reply<R>),
  };
  port.on('message', ({ id, msg }: Request<Q>) => {
    try {
      const done = handle(id, msg, out);
      if (done) done.catch((e: unknown) => out.fail(id, e));
    } catch (e) {
      out.fail(id, e);
    }
  });
  return out;
}

/** A piscina task's failure, as it comes back in place of a result. */
interface TaskFailure {
  taskError: WireError;
}

const isFailure = (r: unknown): r is TaskFailure => typeof r === 'object' && r !== null && 'taskError' in r;

/** Wraps a piscina task function so that its typed errors survive the thread boundary. */
export function task<T, R>(fn: (t: T) => Promise<R>): (t: T) => Promise<R | TaskFailure> {
  return async (t) => {
    try {
      return await fn(t);
    } catch (e) {
      return { taskError: publicError(e) };
    }
  };
}

/** Runs a task made with `task`: resolves with its result or rejects with its typed error. */
export async function runTask<T, R>(pool: Piscina, t: T, transferList?: Transferable[]): Promise<R> {
  const r: unknown = await pool.run(t, transferList ? { transferList: transferList as never } : {});
  if (isFailure(r)) throw fromWire(r.taskError);
  return r as R;
}
