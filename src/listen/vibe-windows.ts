// The vibe lane of a listening session: the last 10 s of audio, embedded in the worker pool every
// 2.5 s of new audio, and the catalog tracks that sound closest. An answer is provisional while
// successive windows disagree on the closest track and final once two in a row agree. Nothing
// here is awaited on the exact lane's path: windows run off the event loop in the pool, and a
// window still running when the next is due makes that one wait (never a queue under load).
import { log } from '../base/log.js';
import { SAMPLE_RATE } from '../audio/decode.js';
import type { Engine, TrackVibeMatch } from '../engine/engine.js';

const WINDOW_SECONDS = 10;
const EVERY_SECONDS = 2.5;
/** The first window waits for this much audio: less says little about a style. */
const FIRST_SECONDS = 5;
/** Shorter than this, a closing window is not worth embedding. */
const MIN_SECONDS = 3;

export type VibeReport = (status: 'provisional' | 'final', heardSeconds: number, matches: TrackVibeMatch[]) => void;

export class VibeWindows {
  private readonly ring = new Float32Array(WINDOW_SECONDS * SAMPLE_RATE);
  /** Samples received in all. */
  private received = 0;
  private lastWindowAt = 0;
  private inFlight: Promise<void> | undefined;
  private previousTop: number | undefined;
  private answered = false;

  constructor(
    private readonly engine: Engine,
    private readonly maxResults: number,
    private readonly report: VibeReport,
    private readonly sessionId: string,
  ) {}

  push(pcm: Float32Array): void {
    const n = this.ring.length;
    // Only the newest window's worth of a large block matters.
    const src = pcm.length > n ? pcm.subarray(pcm.length - n) : pcm;
    const at = (this.received + pcm.length - src.length) % n;
    const first = Math.min(src.length, n - at);
    this.ring.set(src.subarray(0, first), at);
    this.ring.set(src.subarray(first), 0);
    this.received += pcm.length;
    const heard = this.received / SAMPLE_RATE;
    if (!this.inFlight && heard >= FIRST_SECONDS && heard - this.lastWindowAt >= EVERY_SECONDS) this.launch();
  }

  /** Whether any window produced an answer. */
  hasAnswered(): boolean {
    return this.answered;
  }

  /** Waits for the window in flight; with none answered yet, embeds what there is. */
  async finish(): Promise<void> {
    await this.inFlight;
    if (!this.answered && this.received >= MIN_SECONDS * SAMPLE_RATE) {
      this.launch();
      await this.inFlight;
    }
  }

  private launch(): void {
    const heard = this.received / SAMPLE_RATE;
    this.lastWindowAt = heard;
    const window = this.window();
    this.inFlight = this.embed(window, heard)
      .catch((e: unknown) => log.warn('vibe window failed', { session: this.sessionId, error: String(e) }))
      .finally(() => (this.inFlight = undefined));
  }

  private async embed(window: Float32Array, heard: number): Promise<void> {
    const matches = await this.engine.vibeSearch(window, this.maxResults);
    const top = matches[0]?.track.fpId;
    if (top === undefined) return;
    const status = top === this.previousTop ? 'final' : 'provisional';
    this.previousTop = top;
    this.answered = true;
    this.report(status, heard, matches);
  }

  /** The newest audio, oldest sample first: up to WINDOW_SECONDS. */
  private window(): Float32Array {
    const n = this.ring.length;
    if (this.received <= n) return this.ring.slice(0, this.received);
    const at = this.received % n;
    const out = new Float32Array(n);
    out.set(this.ring.subarray(at));
    out.set(this.ring.subarray(0, at), n - at);
    return out;
  }
}
