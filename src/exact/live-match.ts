// The exact lane of one listening session, from audio bytes to decisions: decode, fingerprint,
// incremental votes, and when to speak, judged on the evidence of the most recent audio:
//   provisional: one track leads clearly and its sketch agrees at its offset over the audio
//                heard so far (verify.ts), however little;
//   final:       the leader verifies as a clip would (at least 1.5 s compared) and has held at
//                the same place in the same track over two evaluations.
// Decisions name catalog tracks by fingerprint number only: it runs in a matching thread
// (match-worker.ts), beside the index and away from the catalog, and its owner attaches the rows.
import type { AppError } from '../base/errors.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import { FRAME_SECONDS, FingerprintStream, type Fingerprint } from './fingerprint.js';
import type { FingerprintIndex } from './fingerprint-index.js';
import { VoteTable, type Candidate, type Match, type MatcherConfig } from './matcher.js';
import { QuerySketch, score, verify } from './verify.js';
import { createDecoder, type StreamDecoder, type StreamFormat } from '../audio/stream-decoder.js';

/** Evidence is judged on this much recent audio: a change of track shows within it. */
const WINDOW_SECONDS = 8;
const EVAL_EVERY_SECONDS = 0.25;
const POSITION_EVERY_SECONDS = 1;
/** The leader must have this many times the runner-up's aligned hashes. */
const LEAD = 2;
/**
 * A provisional answer may rest on a few frames of sketch, too few bits to tell related music
 * from the recording: until the sketch is compared over as many frames as verification asks, it
 * needs more aligned hashes than a verified answer does.
 */
const PROVISIONAL_MIN_ALIGNED = 8;

export interface LiveMatchOptions {
  format: StreamFormat;
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
  /** Chunks of the stream taken so far: the session judges the client's rate by their arrival. */
  chunks: number;
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
  private readonly sketch = new QuerySketch(this.fp.sketchLayout());
  private readonly votes: VoteTable;
  private samples = 0;
  private lastEval = 0;
  private lastPosition = 0;
  private previousTop: Candidate | undefined;
  private provisionalFor: number | undefined;
  /**
   * Stream frame where the audio being matched began: the stream's start, or where its earliest
   * aligned hash put the latest change of track. Offsets are given from there, as a clip's are
   * from its start (the earliest aligned hash of a sparse noisy match can lie seconds in).
   */
  private since = 0;
  private finalFor: number | undefined;
  private stopping = false;
  private chunks = 0;
  private steps = 0;

  constructor(
    private readonly index: FingerprintIndex,
    private readonly matcher: MatcherConfig,
    private readonly o: LiveMatchOptions,
    private readonly on: LiveMatchEvents,
  ) {
    this.votes = new VoteTable(matcher);
    this.decoder = createDecoder(o.format, o.sampleRate, { pcm: (x) => this.onPcm(x), error: (e) => on.error(e) });
  }

  /** Every chunk is answered by at least one step, so that a chunk without audio is accounted for too. */
  audio(chunk: Buffer): void {
    if (this.stopping) return;
    this.chunks++;
    const steps = this.steps;
    this.decoder.write(chunk);
    if (this.steps === steps) this.emit({ heardSeconds: this.heardSeconds, decisions: [] });
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
    this.emit({ heardSeconds: this.heardSeconds, decisions, ended: true, ...(noMatch ? { noMatch } : {}) });
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
    this.emit({ heardSeconds: this.heardSeconds, decisions, ...(this.o.keepPcm ? { pcm } : {}) });
  }

  private emit(step: Omit<LiveStep, 'chunks'>): void {
    this.steps++;
    this.on.step({ ...step, chunks: this.chunks });
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
    const cands = this.votes.best(Math.max(2, this.o.maxResults));
    const [top, second] = cands;
    const clear = !!top && (!second || top.alignedHashes >= LEAD * second.alignedHashes);
    // The leader checked on whatever audio there is: under 1.5 s, too little to verify (a
    // provisional answer), then as clip search verifies it (a final one).
    const lead = top && clear ? score(top, this.sketch, this.index, this.matcher, 1) : undefined;
    const holds = !!lead && lead.bitErrorRate <= this.matcher.maxBitErrorRate;
    // Compared where each puts the current frame: a line fitted on a few seconds can tilt a little.
    const frame = now / FRAME_SECONDS;
    const at = (c: Candidate) => c.offsetFrames + c.timeScale * frame;
    const stable = holds && !!this.previousTop && this.previousTop.fpId === top!.fpId && Math.abs(at(this.previousTop) - at(top!)) <= 2;
    this.previousTop = holds ? top : undefined;
    const accepted = holds ? verify(cands, this.sketch, this.index, this.matcher).slice(0, this.o.maxResults) : [];

    if (top && accepted.length && (stable || ending)) {
      if (this.finalFor !== top.fpId) {
        const changed = this.finalFor !== undefined;
        this.finalFor = top.fpId;
        if (changed) this.since = top.startFrame;
        this.lastPosition = now;
        out.push({ status: 'final', matches: this.placed(accepted), heardSeconds: now, ...(changed ? { changedAt: top.startFrame * FRAME_SECONDS } : {}) });
      } else if (now - this.lastPosition >= POSITION_EVERY_SECONDS) {
        this.lastPosition = now;
        out.push({ status: 'final', matches: this.placed(accepted), heardSeconds: now });
      }
    } else if (
      holds &&
      this.finalFor === undefined &&
      this.provisionalFor !== lead.fpId &&
      !ending &&
      (lead.alignedHashes >= PROVISIONAL_MIN_ALIGNED || score(top!, this.sketch, this.index, this.matcher))
    ) {
      this.provisionalFor = lead.fpId;
      out.push({ status: 'provisional', matches: this.placed([lead]), heardSeconds: now });
    }
  }

  /** Matches with `offsetSeconds` where in the track the audio matched began. */
  private placed(ms: Match[]): Match[] {
    return ms.map((m) => ({ ...m, offsetSeconds: Math.max(0, (m.offsetFrames + m.timeScale * this.since) * FRAME_SECONDS) }));
  }
}
