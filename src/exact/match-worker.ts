// A matching thread: the exact lane of many live sessions (live-match.ts) and of uploaded clips
// (decode, then clip-match.ts), beside its own reader of the fingerprint index. Sessions are
// long-lived and stateful, so this is a plain worker with a message per chunk, not a pool of
// independent tasks. Messages: see match-threads.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { toAppError, type AppError } from '../base/errors.js';
import { log } from '../base/log.js';
import { checkClipLength, matchClip, MAX_QUERY_SECONDS } from './clip-match.js';
import { decodeBuffer } from '../audio/decode.js';
import { FingerprintIndex } from './fingerprint-index.js';
import type { Match, MatcherConfig } from './matcher.js';
import { DataStore } from './lmdb.js';
import { LiveMatch, type LiveMatchOptions, type LiveStep } from './live-match.js';

export interface MatchWorkerData {
  dataDir: string;
  matcher: MatcherConfig;
  ffmpegPath: string;
}

export interface ClipOptions {
  /** The upload's name, for errors. */
  label: string;
  maxResults: number;
  /** Match the clip (modes exact and both); else only decode. */
  exact: boolean;
  /** Hand the decoded audio back (the vibe lane embeds it). */
  keepPcm: boolean;
}

export type ToWorker =
  | { op: 'open'; id: number; options: LiveMatchOptions }
  | { op: 'audio'; id: number; bytes: ArrayBuffer }
  | { op: 'stop'; id: number }
  | { op: 'kill'; id: number }
  | { op: 'clip'; id: number; bytes: ArrayBuffer; options: ClipOptions };

export type FromWorker =
  | { id: number; step: LiveStep }
  // A clip answers in two steps, so that its vibe lane starts while its exact lane matches.
  | { id: number; decoded: { pcm?: Float32Array } }
  | { id: number; matches: Match[] }
  | { id: number; error: { code: AppError['code']; message: string } };

const data = workerData as MatchWorkerData;
const port = parentPort!;
const index = new FingerprintIndex(DataStore.openReader(data.dataDir));
const sessions = new Map<number, LiveMatch>();

function failed(id: number, e: unknown): void {
  sessions.get(id)?.kill();
  sessions.delete(id);
  const { code, message } = toAppError(e);
  if (code === 'INTERNAL') log.error('matching thread failed a request', { error: String(e) });
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

async function clip(id: number, bytes: ArrayBuffer, o: ClipOptions): Promise<void> {
  const pcm = await decodeBuffer(new Uint8Array(bytes), o.label, { ffmpegPath: data.ffmpegPath, maxSeconds: MAX_QUERY_SECONDS });
  checkClipLength(pcm);
  // The copy travels; this thread goes on matching its own.
  const kept = o.keepPcm ? pcm.slice() : undefined;
  port.postMessage({ id, decoded: kept ? { pcm: kept } : {} } satisfies FromWorker, kept ? [kept.buffer] : []);
  if (o.exact) port.postMessage({ id, matches: matchClip(index, data.matcher, pcm, o.maxResults) } satisfies FromWorker);
}

port.on('message', (msg: ToWorker) => {
  try {
    if (msg.op === 'open') return open(msg.id, msg.options);
    if (msg.op === 'clip') {
      clip(msg.id, msg.bytes, msg.options).catch((e: unknown) => failed(msg.id, e));
      return;
    }
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
