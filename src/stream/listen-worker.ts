// A listening thread: the exact lane of many sessions (live-match.ts) beside its own reader of
// the fingerprint index. Sessions are long-lived and stateful, so this is a plain worker with a
// message per chunk, not a pool of independent tasks. Messages: see listen-threads.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { toAppError, type AppError } from '../errors.js';
import { log } from '../log.js';
import { FingerprintIndex } from '../pipeline/fingerprint-index.js';
import type { MatcherConfig } from '../pipeline/matcher.js';
import { DataStore } from '../pipeline/store.js';
import { LiveMatch, type LiveMatchOptions, type LiveStep } from './live-match.js';

export interface ListenWorkerData {
  dataDir: string;
  matcher: MatcherConfig;
}

export type ToWorker =
  | { op: 'open'; id: number; options: LiveMatchOptions }
  | { op: 'audio'; id: number; bytes: ArrayBuffer }
  | { op: 'stop'; id: number }
  | { op: 'kill'; id: number };

export type FromWorker = { id: number; step: LiveStep } | { id: number; error: { code: AppError['code']; message: string } };

const data = workerData as ListenWorkerData;
const port = parentPort!;
const index = new FingerprintIndex(DataStore.openReader(data.dataDir));
const sessions = new Map<number, LiveMatch>();

function failed(id: number, e: unknown): void {
  sessions.get(id)?.kill();
  sessions.delete(id);
  const { code, message } = toAppError(e);
  if (code === 'INTERNAL') log.error('listening thread failed a session', { error: String(e) });
  port.postMessage({ id, error: { code, message } } satisfies FromWorker);
}

function open(id: number, options: LiveMatchOptions): void {
  const m = new LiveMatch(index, data.matcher, options, {
    step: (step) => {
      if (step.ended) sessions.delete(id);
      // Decoded audio may be a view of a larger buffer: it travels as a copy of its own.
      const pcm = step.pcm?.slice();
      port.postMessage({ id, step: pcm ? { ...step, pcm } : step } satisfies FromWorker, pcm ? [pcm.buffer] : []);
    },
    error: (e) => failed(id, e),
  });
  sessions.set(id, m);
}

port.on('message', (msg: ToWorker) => {
  try {
    if (msg.op === 'open') return open(msg.id, msg.options);
    const m = sessions.get(msg.id);
    if (!m) return; // ended or failed meanwhile
    if (msg.op === 'audio') m.audio(Buffer.from(msg.bytes));
    else if (msg.op === 'stop') m.stop().catch((e: unknown) => failed(msg.id, e));
    else {
      m.kill();
      sessions.delete(msg.id);
    }
  } catch (e) {
    failed(msg.id, e);
  }
});
