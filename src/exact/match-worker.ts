// A matching thread: the exact lane of many live sessions (live-match.ts) and of uploaded clips
// (decode, then clip-match.ts), beside its own reader of the fingerprint index. Sessions are
// long-lived and stateful, so this is a plain worker with a message per chunk, not a pool of
// independent tasks. Messages: see match-threads.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { servePort } from '../base/channel.js';
import { checkClipLength, matchClip, MAX_QUERY_SECONDS } from './clip-match.js';
import { decodeUpload } from '../audio/decode.js';
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

/** Messages on a stream: a live session (open, then audio, stop, kill) or a clip. */
export type ToWorker =
  | { op: 'open'; options: LiveMatchOptions }
  | { op: 'audio'; bytes: ArrayBuffer }
  | { op: 'stop' }
  | { op: 'kill' }
  | { op: 'clip'; file: string; options: ClipOptions };

export type FromWorker =
  | { step: LiveStep }
  // A clip answers in two steps, so that its vibe lane starts while its exact lane matches.
  | { decoded: { pcm?: Float32Array } }
  | { matches: Match[] };

const data = workerData as MatchWorkerData;
const index = new FingerprintIndex(DataStore.openReader(data.dataDir));
const sessions = new Map<number, LiveMatch>();

const out = servePort<ToWorker, FromWorker>(parentPort!, (id, msg) => {
  if (msg.op === 'open') return open(id, msg.options);
  if (msg.op === 'clip') return clip(id, msg.file, msg.options);
  const m = sessions.get(id);
  if (!m) return; // ended or failed meanwhile
  try {
    if (msg.op === 'audio') m.audio(Buffer.from(msg.bytes));
    else if (msg.op === 'stop') m.stop().catch((e: unknown) => failed(id, e));
    else {
      m.kill();
      sessions.delete(id);
    }
  } catch (e) {
    failed(id, e);
  }
});

function failed(id: number, e: unknown): void {
  sessions.get(id)?.kill();
  sessions.delete(id);
  out.fail(id, e);
}

function open(id: number, options: LiveMatchOptions): void {
  const m = new LiveMatch(index, data.matcher, options, {
    step: (step) => {
      if (step.ended) sessions.delete(id);
      // Decoded audio may be a view of a larger buffer: it travels as a copy of its own.
      const pcm = step.pcm?.slice();
      out.reply(id, { step: pcm ? { ...step, pcm } : step }, { last: !!step.ended, transfer: pcm ? [pcm.buffer] : [] });
    },
    error: (e) => failed(id, e),
  });
  sessions.set(id, m);
}

/**
 * A clip's decode takes well under a second; the lanes' budgets only start once it is done, so
 * a stalled ffmpeg would otherwise hold the request and this thread's slot for as long as it hangs.
 */
const DECODE_TIMEOUT_MS = 10_000;

async function clip(id: number, file: string, o: ClipOptions): Promise<void> {
  const pcm = await decodeUpload(file, o.label, { ffmpegPath: data.ffmpegPath, maxSeconds: MAX_QUERY_SECONDS, timeoutMs: DECODE_TIMEOUT_MS });
  checkClipLength(pcm);
  // The copy travels; this thread goes on matching its own.
  const kept = o.keepPcm ? pcm.slice() : undefined;
  out.reply(id, { decoded: kept ? { pcm: kept } : {} }, { last: !o.exact, transfer: kept ? [kept.buffer] : [] });
  if (o.exact) out.reply(id, { matches: matchClip(index, data.matcher, pcm, o.maxResults) });
}
