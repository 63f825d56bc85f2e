// The exact lane of one listening session, from audio bytes to decisions: decode, fingerprint,
// incremental votes, and when to speak, judged on the evidence of the most recent audio:
//   provisional: one track leads clearly with at least PROVISIONAL_ALIGNED aligned hashes;
//   final:       the leader verifies (verify.ts: its sketch agrees at its offset) and holds at
//                the same place in the same track over two evaluations.
// Decisions name catalog tracks by fingerprint number only: it runs in a matching thread
// (server/match-worker.ts), beside the index and away from the catalog, and its owner attaches the rows.
import { AppError } from '../errors.js';
import { SAMPLE_RATE } from '../pipeline/decode.js';
import { FRAME_SECONDS, FingerprintStream, type Fingerprint } from '../pipeline/fingerprint.js';
import type { FingerprintIndex } from '../pipeline/fingerprint-index.js';
import { VoteTable, type Candidate, type Match, type MatcherConfig } from '../pipeline/matcher.js';
import { QuerySketch, score, verify } from '../pipeline/verify.js';
import { createDecoder, type StreamDecoder } from './decoder.js';
import type { Start } from './protocol.js';

/** Evidence is judged on this much recent audio: a change of track shows within it. */
const WINDOW_SECONDS = 8;
const EVAL_EVERY_SECONDS = 0.25;
const POSITION_EVERY_SECONDS = 1;
/**
 * A provisional answer comes before there is audio enough to verify (1.5 s): it needs this many
 * aligned hashes, half the threshold that answered alone before verification.
 */
const PROVISIONAL_ALIGNED = 15;
/** The leader must have this many times the runner-up's aligned hashes. */
const LEAD = 2;

export interface LiveMatchOptions {
  format: Start['format'];
  sampleRate?: number;
  maxResults: number;
  /** Fingerprint and decide (modes exact and both); else only decode. */
  exact: boolean;
  /** Hand the decoded audio on with each step (the vibe lane embeds it). */
  keepPcm: boolean;
}

export interface LiveDecision {
  status: 'provisional' | 'final';
  matches: Match[];
  heardSeconds: number;
  /** Continuous sessions: stream time at which a new track began. */
  changedAt?: number;
}

/** What one block of decoded audio led to. */
export interface LiveStep {
  heardSeconds: number;
  pcm?: Float32Array;
  decisions: LiveDecision[];
  /** The last step after `stop`: no final answer came (modes exact and both). */
  noMatch?: boolean;
  /** The last step after `stop`. */
  ended?: boolean;
}

export interface LiveMatchEvents {
  step(s: LiveStep): void;
  error(e: AppError): void;
}

export class LiveMatch {
  private readonly decoder: StreamDecoder;
  private readonly fp = new FingerprintStream('query');
  private readonly sketch = new QuerySketch(this.fp.phaseCount);
  private readonly votes: VoteTable;
  private samples = 0;
  private lastEval = 0;
  private lastPosition = 0;
  private previousTop: Candidate | undefined;
  private provisionalFor: number | undefined;
  private finalFor: number | undefined;
  private stopping = false;

  constructor(
    private readonly index: FingerprintIndex,
    private readonly matcher: MatcherConfig,
    private readonly o: LiveMatchOptions,
    private readonly on: LiveMatchEvents,
  ) {
    this.votes = new VoteTable(matcher);
    this.decoder = createDecoder(o.format, o.sampleRate, { pcm: (x) => this.onPcm(x), error: (e) => on.error(e) });
  }

  audio(chunk: Buffer): void {
    if (!this.stopping) this.decoder.write(chunk);
  }

  /** No more audio: decodes what is left, and the last step judges all of it. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.decoder.end();
    const decisions: LiveDecision[] = [];
    let noMatch = false;
    if (this.o.exact) {
      this.consume(this.fp.end());
      this.evaluate(true, decisions);
      noMatch = this.finalFor === undefined;
    }
    this.on.step({ heardSeconds: this.heardSeconds, decisions, ended: true, ...(noMatch ? { noMatch } : {}) });
  }

  kill(): void {
    this.stopping = true;
    this.decoder.kill();
  }

  private get heardSeconds(): number {
    return this.samples / SAMPLE_RATE;
  }

  private onPcm(pcm: Float32Array): void {
    this.samples += pcm.length;
    const decisions: LiveDecision[] = [];
    if (this.o.exact) {
      this.consume(this.fp.push(pcm));
      // Draining after stop: the closing evaluation sees it all.
      if (!this.stopping && this.heardSeconds - this.lastEval >= EVAL_EVERY_SECONDS) {
        this.lastEval = this.heardSeconds;
        this.evaluate(false, decisions);
      }
    }
    this.on.step({ heardSeconds: this.heardSeconds, decisions, ...(this.o.keepPcm ? { pcm } : {}) });
  }

  private consume(h: Fingerprint): void {
    if (h.hashes.length) this.votes.add(this.index.lookup(h));
    this.sketch.append(h.sketches);
  }

  private evaluate(ending: boolean, out: LiveDecision[]): void {
    const now = this.heardSeconds;
    const windowStart = Math.floor((now - WINDOW_SECONDS) / FRAME_SECONDS);
    this.votes.dropBefore(windowStart);
    this.sketch.dropBefore(windowStart);
    const cands = this.votes.best(Math.max(2, this.o.maxResults), Math.min(this.matcher.minAligned, PROVISIONAL_ALIGNED));
    const [top, second] = cands;
    const clear = !!top && (!second || top.alignedHashes >= LEAD * second.alignedHashes);
    const stable = !!top && !!this.previousTop && this.previousTop.fpId === top.fpId && Math.abs(this.previousTop.offsetFrames - top.offsetFrames) <= 2;
    this.previousTop = top;
    const accepted = top && clear ? verify(cands, this.sketch, this.index, this.matcher).slice(0, this.o.maxResults) : [];

    if (top && accepted.length && (stable || ending)) {
      if (this.finalFor !== top.fpId) {
        const changed = this.finalFor !== undefined;
        this.finalFor = top.fpId;
        this.lastPosition = now;
        out.push({ status: 'final', matches: accepted, heardSeconds: now, ...(changed ? { changedAt: top.startFrame * FRAME_SECONDS } : {}) });
      } else if (now - this.lastPosition >= POSITION_EVERY_SECONDS) {
        this.lastPosition = now;
        out.push({ status: 'final', matches: accepted, heardSeconds: now });
      }
    } else if (top && clear && top.alignedHashes >= PROVISIONAL_ALIGNED && this.finalFor === undefined && this.provisionalFor !== top.fpId && !ending) {
      // Scored on whatever audio there is, so its confidence can be under 0.5: not yet verified.
      const m: Match = score(top, this.sketch, this.index, this.matcher, 1) ?? { ...top, bitErrorRate: 0.5, confidence: 0 };
      this.provisionalFor = top.fpId;
      out.push({ status: 'provisional', matches: [m], heardSeconds: now });
    }
  }
}
