// One listening session: audio in (already demultiplexed from the socket), results out. The
// session decodes, fingerprints and votes incrementally, and decides from the evidence of its
// most recent audio when to speak:
//   provisional: one track leads clearly with at least PROVISIONAL_FRACTION of the calibrated
//                threshold of aligned hashes;
//   final:       the lead reaches the calibrated threshold and holds at the same place in the
//                same track over two evaluations.
// Continuous sessions keep going after a final answer and report each change of track. In modes
// vibe and both, vibe-windows.ts answers which catalog tracks sound alike, beside and never in
// the way of the exact lane.
import { AppError, wsCloseCode } from '../errors.js';
import { log } from '../log.js';
import type { Track } from '../catalog/catalog.js';
import { SAMPLE_RATE } from '../pipeline/decode.js';
import type { Engine } from '../pipeline/engine.js';
import { FRAME_SECONDS, FingerprintStream, type Hashes } from '../pipeline/fingerprint.js';
import type { Match, VoteTable } from '../pipeline/matcher.js';
import { exactMatch, vibeMatch } from '../server/schemas.js';
import { createDecoder, type StreamDecoder } from './decoder.js';
import type { LiveMatch, ServerMessage, Start } from './protocol.js';
import { VibeWindows } from './vibe-windows.js';

export interface ListenLimits {
  maxSessions: number;
  /** Longest session unless continuous. */
  maxSeconds: number;
  maxChunkBytes: number;
  /** A session that receives no audio this long is closed. */
  idleSeconds: number;
  /** Audio may run ahead of the wall clock by this factor, after a burst allowance. */
  paceFactor: number;
  paceBurstSeconds: number;
}

export const DEFAULT_LIMITS: ListenLimits = {
  maxSessions: 200,
  maxSeconds: 30,
  maxChunkBytes: 128 * 1024,
  idleSeconds: 10,
  paceFactor: 2,
  paceBurstSeconds: 5,
};

/** Evidence is judged on this much recent audio: a change of track shows within it. */
const WINDOW_SECONDS = 8;
const EVAL_EVERY_SECONDS = 0.25;
const POSITION_EVERY_SECONDS = 1;
const PROVISIONAL_FRACTION = 0.5;
/** The leader must have this many times the runner-up's aligned hashes. */
const LEAD = 2;

export interface SessionSink {
  send(msg: ServerMessage): void;
  /** Ends the connection; the session has released its resources before calling it. */
  close(code: number, reason: string): void;
}

export class ListenSession {
  private readonly decoder: StreamDecoder;
  private readonly exactOn: boolean;
  private readonly vibe: VibeWindows | undefined;
  private readonly fp = new FingerprintStream('query');
  private readonly votes: VoteTable;
  private readonly startedAt = performance.now();
  private readonly tracks = new Map<number, Track>();
  private samples = 0;
  private lastEval = 0;
  private lastPosition = 0;
  private previousTop: Match | undefined;
  private provisionalFor: number | undefined;
  private finalFor: number | undefined;
  private work: Promise<void> = Promise.resolve();
  /** No more audio is taken (stop, failure, abort). */
  private ended = false;
  /** The connection is closed or closing: nothing more is sent. */
  private closed = false;

  constructor(
    readonly id: string,
    private readonly start: Start,
    private readonly engine: Engine,
    private readonly limits: ListenLimits,
    private readonly sink: SessionSink,
  ) {
    this.votes = engine.newVoteTable();
    this.exactOn = start.mode !== 'vibe';
    this.vibe =
      start.mode !== 'exact' && engine.vibe
        ? new VibeWindows(engine, engine.vibe, start.max_results, (status, heard, matches) => this.send({ type: 'result', lane: 'vibe', status, heard_seconds: round(heard, 2), matches: matches.map(vibeMatch) }), id)
        : undefined;
    this.decoder = createDecoder(start.format, start.sample_rate, { pcm: (x) => this.onPcm(x), error: (e) => this.fail(e) });
  }

  private get heardSeconds(): number {
    return this.samples / SAMPLE_RATE;
  }

  audio(chunk: Buffer): void {
    if (this.ended) return;
    if (chunk.length > this.limits.maxChunkBytes) {
      this.fail(new AppError('CHUNK_TOO_LARGE', `audio chunk of ${chunk.length} bytes; at most ${this.limits.maxChunkBytes}`));
      return;
    }
    this.decoder.write(chunk);
  }

  /** The client said stop: decode what is left, answer, close. */
  stop(reason = 'stopped'): void {
    if (this.ended) return;
    this.ended = true;
    this.enqueue(async () => {
      await this.decoder.end();
      if (this.exactOn) {
        this.consume(this.fp.end());
        await this.evaluate(true);
      }
      if (this.vibe) {
        await this.vibe.finish();
        if (!this.exactOn && !this.vibe.answered) this.send({ type: 'no_match', heard_seconds: round(this.heardSeconds, 2) });
      }
      this.close(1000, reason);
    });
  }

  /** The connection is gone (client vanished, server shutting down): release everything. */
  abort(): void {
    this.ended = true;
    this.closed = true;
    this.decoder.kill();
  }

  /** Ends the session with a typed error: an `error` message, then the close code of its code. */
  fail(e: AppError): void {
    if (this.closed) return;
    this.ended = true;
    this.send({ type: 'error', code: e.code, message: e.message });
    this.close(wsCloseCode(e.code), e.message);
  }

  private send(msg: ServerMessage): void {
    if (!this.closed) this.sink.send(msg);
  }

  private close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.kill();
    this.sink.close(code, reason);
  }

  private onPcm(pcm: Float32Array): void {
    this.samples += pcm.length;
    if (this.exactOn) this.consume(this.fp.push(pcm));
    this.vibe?.push(pcm);
    if (this.ended) return; // draining after stop: the closing evaluation sees it
    const elapsed = (performance.now() - this.startedAt) / 1000;
    if (this.heardSeconds > elapsed * this.limits.paceFactor + this.limits.paceBurstSeconds) {
      this.fail(new AppError('TOO_FAST', `audio is arriving much faster than real time (${this.heardSeconds.toFixed(1)} s of audio in ${elapsed.toFixed(1)} s)`));
      return;
    }
    if (!this.start.continuous && this.heardSeconds >= this.limits.maxSeconds) {
      this.stop(`maximum session length (${this.limits.maxSeconds} s) reached`);
      return;
    }
    if (this.exactOn && this.heardSeconds - this.lastEval >= EVAL_EVERY_SECONDS) {
      this.lastEval = this.heardSeconds;
      this.enqueue(() => this.evaluate(false));
    }
  }

  private consume(h: Hashes): void {
    if (h.hashes.length) this.votes.add(this.engine.index.lookup(h));
  }

  // Evaluations resolve catalog rows asynchronously; a chain keeps messages in order.
  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((e: unknown) => {
      log.error('listen session failed', { session: this.id, error: String(e) });
      this.fail(new AppError('INTERNAL', 'internal error'));
    });
  }

  private async evaluate(ending: boolean): Promise<void> {
    if (this.closed) return;
    const now = this.heardSeconds;
    this.votes.dropBefore(Math.floor((now - WINDOW_SECONDS) / FRAME_SECONDS));
    const threshold = this.engine.minAligned;
    const ms = this.votes.best(Math.max(2, this.start.max_results), Math.ceil(threshold * PROVISIONAL_FRACTION));
    const [top, second] = ms;
    const clear = !!top && (!second || top.alignedHashes >= LEAD * second.alignedHashes);
    const stable = !!top && !!this.previousTop && this.previousTop.fpId === top.fpId && Math.abs(this.previousTop.offsetFrames - top.offsetFrames) <= 2;
    this.previousTop = top;

    if (top && clear && top.alignedHashes >= threshold && (stable || ending)) {
      const accepted = ms.filter((m) => m.alignedHashes >= threshold).slice(0, this.start.max_results);
      if (this.finalFor !== top.fpId) {
        const changed = this.finalFor !== undefined;
        this.finalFor = top.fpId;
        this.lastPosition = now;
        await this.report('final', accepted, now, changed ? top.startFrame * FRAME_SECONDS : undefined);
      } else if (now - this.lastPosition >= POSITION_EVERY_SECONDS) {
        this.lastPosition = now;
        await this.report('final', accepted, now);
      }
    } else if (top && clear && this.finalFor === undefined && this.provisionalFor !== top.fpId && !ending) {
      this.provisionalFor = top.fpId;
      await this.report('provisional', [top], now);
    }
    if (ending && this.finalFor === undefined) this.send({ type: 'no_match', heard_seconds: round(now, 2) });
  }

  private async report(status: 'provisional' | 'final', matches: Match[], now: number, changedAt?: number): Promise<void> {
    const missing = matches.map((m) => m.fpId).filter((id) => !this.tracks.has(id));
    if (missing.length) for (const [id, t] of await this.engine.catalog.byFpIds(missing)) this.tracks.set(id, t);
    const live: LiveMatch[] = matches.flatMap((m) => {
      const track = this.tracks.get(m.fpId);
      if (!track) return []; // deleted meanwhile
      const base = exactMatch({ ...m, track, offsetSeconds: Math.max(0, (m.offsetFrames + m.startFrame) * FRAME_SECONDS) });
      return [{ ...base, position_seconds: round(Math.min(track.duration_seconds, Math.max(0, m.offsetFrames * FRAME_SECONDS + now)), 2) }];
    });
    if (!live.length) return;
    this.send({ type: 'result', lane: 'exact', status, heard_seconds: round(now, 2), matches: live, ...(changedAt !== undefined ? { changed_at_seconds: round(changedAt, 2) } : {}) });
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
