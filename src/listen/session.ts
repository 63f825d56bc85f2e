// One listening session: audio in (already demultiplexed from the socket), results out. Its
// exact lane runs in a matching thread (live-match.ts decides there when to speak); here the
// session keeps its limits, attaches catalog rows to the thread's decisions and sends them. In
// modes vibe and both, vibe-windows.ts answers which catalog tracks sound alike from the decoded
// audio the thread hands back, beside and never in the way of the exact lane.
import { AppError, publicError, wsCloseCode } from '../base/errors.js';
import type { Track } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { FRAME_SECONDS } from '../exact/fingerprint.js';
import { exactMatch, vibeMatch } from '../api/schemas.js';
import type { LiveMatchHandle } from '../exact/match-threads.js';
import type { LiveDecision, LiveStep } from '../exact/live-match.js';
import type { LiveMatch, ServerMessage, Start } from '../api/protocol.js';
import { AudioRate, type ListenLimits } from './limits.js';
import { VibeWindows } from './vibe-windows.js';

export interface SessionSink {
  send(msg: ServerMessage): void;
  /** Ends the connection; the session has released its resources before calling it. */
  close(code: number, reason: string): void;
}

export class ListenSession {
  private readonly lane: LiveMatchHandle;
  private readonly exactOn: boolean;
  private readonly vibe: VibeWindows | undefined;
  private readonly startedAt = performance.now();
  private readonly rate: AudioRate;
  /** Server time of the last audio chunk (or of the start). */
  private lastAudio: number;
  /** Server time of `stop`, once it came. */
  private stoppedAt: number | undefined;
  private readonly tracks = new Map<number, Track>();
  private heardSeconds = 0;
  private work: Promise<void> = Promise.resolve();
  /** No more audio is taken (stop, failure, abort). */
  private ended = false;
  /** The connection is closed or closing: nothing more is sent. */
  private closed = false;
  private stopReason = 'stopped';

  constructor(
    private readonly id: string,
    private readonly start: Start,
    private readonly engine: Engine,
    private readonly limits: ListenLimits,
    /** The server's clock (limits.ts), in ms. */
    private readonly clock: () => number,
    private readonly sink: SessionSink,
  ) {
    this.lastAudio = clock();
    this.rate = new AudioRate(this.lastAudio);
    this.exactOn = start.mode !== 'vibe';
    this.vibe =
      start.mode !== 'exact' && engine.vibeStatus().on
        ? new VibeWindows(
            engine,
            start.max_results,
            (status, heard, matches) => this.send({ type: 'result', lane: 'vibe', status, heard_seconds: round(heard, 2), matches: matches.map(vibeMatch) }),
            id,
          )
        : undefined;
    this.lane = engine.openLive(
      { format: start.format, sampleRate: start.sample_rate, maxResults: start.max_results, exact: this.exactOn, keepPcm: !!this.vibe },
      { step: (s) => this.onStep(s), error: (e) => this.fail(e) },
    );
  }

  audio(chunk: Buffer): void {
    if (this.ended) return;
    this.lastAudio = this.clock();
    if (chunk.length > this.limits.maxChunkBytes) {
      this.fail(new AppError('CHUNK_TOO_LARGE', `audio chunk of ${chunk.length} bytes; at most ${this.limits.maxChunkBytes}`));
      return;
    }
    this.rate.arrived(this.lastAudio);
    this.lane.audio(chunk);
  }

  /**
   * The limits judged on the clock rather than on audio (see limits.ts): idle, too slow a
   * trickle, and, after `stop`, an answer that the server fails to give in time.
   */
  check(): void {
    if (this.closed) return;
    const now = this.clock();
    const l = this.limits;
    if (this.stoppedAt !== undefined) {
      if (now - this.stoppedAt > l.drainSeconds * 1000) this.fail(new AppError('TIMEOUT', `no answer within ${l.drainSeconds} s of stop`));
      return;
    }
    if (this.ended) return;
    if (now - this.lastAudio > l.idleSeconds * 1000) {
      this.fail(new AppError('IDLE_TIMEOUT', `no audio for ${l.idleSeconds} s`));
      return;
    }
    const rate = this.rate.rate(now, l.rateWindowSeconds * 1000);
    if (rate !== undefined && rate < l.minAudioRate) {
      this.fail(
        new AppError(
          'TOO_SLOW',
          `audio is arriving much slower than real time (${(rate * l.rateWindowSeconds).toFixed(1)} s of audio in the last ${l.rateWindowSeconds} s)`,
        ),
      );
    }
  }

  /** The client said stop: the thread decodes what is left and answers; then the session closes. */
  stop(reason = 'stopped'): void {
    if (this.ended) return;
    this.ended = true;
    this.stoppedAt = this.clock();
    this.stopReason = reason;
    this.lane.stop();
  }

  /** The connection is gone (client vanished, server shutting down): release everything. */
  abort(): void {
    this.ended = true;
    this.closed = true;
    this.lane.kill();
  }

  /** Ends the session with a typed error: an `error` message, then the close code of its code. */
  fail(e: unknown): void {
    if (this.closed) return;
    this.ended = true;
    const { code, message } = publicError(e, { session: this.id });
    this.send({ type: 'error', code, message });
    this.close(wsCloseCode(code), message);
  }

  private send(msg: ServerMessage): void {
    if (!this.closed) this.sink.send(msg);
  }

  private close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.lane.kill();
    this.sink.close(code, reason);
  }

  private onStep(s: LiveStep): void {
    if (this.closed) return;
    this.heardSeconds = s.heardSeconds;
    this.rate.decoded(s.chunks, s.heardSeconds, this.limits.rateWindowSeconds * 1000);
    if (s.pcm) this.vibe?.push(s.pcm);
    for (const d of s.decisions) this.enqueue(() => this.report(d));
    if (s.ended) {
      this.enqueue(async () => {
        if (s.noMatch) this.send({ type: 'no_match', heard_seconds: round(s.heardSeconds, 2) });
        if (this.vibe) {
          await this.vibe.finish();
          if (!this.exactOn && !this.vibe.hasAnswered()) this.send({ type: 'no_match', heard_seconds: round(s.heardSeconds, 2) });
        }
        this.close(1000, this.stopReason);
      });
      return;
    }
    if (this.ended) return; // draining after stop
    const elapsed = (performance.now() - this.startedAt) / 1000;
    if (this.heardSeconds > elapsed * this.limits.paceFactor + this.limits.paceBurstSeconds) {
      this.fail(
        new AppError('TOO_FAST', `audio is arriving much faster than real time (${this.heardSeconds.toFixed(1)} s of audio in ${elapsed.toFixed(1)} s)`),
      );
      return;
    }
    if (!this.start.continuous && this.heardSeconds >= this.limits.maxSeconds) this.stop(`maximum session length (${this.limits.maxSeconds} s) reached`);
  }

  // Reports resolve catalog rows asynchronously; a chain keeps messages in order.
  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((e: unknown) => this.fail(e));
  }

  private async report(d: LiveDecision): Promise<void> {
    const missing = d.matches.map((m) => m.fpId).filter((id) => !this.tracks.has(id));
    if (missing.length) for (const [id, t] of await this.engine.tracksByFpId(missing)) this.tracks.set(id, t);
    const now = d.heardSeconds;
    const live: LiveMatch[] = d.matches.flatMap((m) => {
      const track = this.tracks.get(m.fpId);
      if (!track) return []; // deleted meanwhile
      const base = exactMatch({ ...m, track });
      return [{ ...base, position_seconds: round(Math.min(track.duration_seconds, Math.max(0, m.offsetFrames * FRAME_SECONDS + m.timeScale * now)), 2) }];
    });
    if (!live.length) return;
    this.send({
      type: 'result',
      lane: 'exact',
      status: d.status,
      heard_seconds: round(now, 2),
      matches: live,
      ...(d.changedAt !== undefined ? { changed_at_seconds: round(d.changedAt, 2) } : {}),
    });
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
