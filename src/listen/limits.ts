// The limits a live session is held to, and the clocks they are judged on. A client is judged on
// what it sent and when it arrived, never on the server's own delays: time the event loop spends
// stalled does not count (ServerClock), and the audio rate counts only what the matching thread
// has accounted for, at the times those chunks arrived (AudioRate).

export interface ListenLimits {
  maxSessions: number;
  /** Open connections from one client address. */
  maxSessionsPerAddress: number;
  /** Longest session unless continuous. */
  maxSeconds: number;
  maxChunkBytes: number;
  /** A connection must send `start` within this long. */
  startSeconds: number;
  /** A session that receives no audio this long is closed (not after `stop`). */
  idleSeconds: number;
  /** Audio may run ahead of the wall clock by this factor, after a burst allowance. */
  paceFactor: number;
  paceBurstSeconds: number;
  /** Seconds of audio per second the client must deliver, over each window of rateWindowSeconds. */
  minAudioRate: number;
  rateWindowSeconds: number;
  /** After `stop`, the server has this long to answer before the session fails. */
  drainSeconds: number;
}

export const DEFAULT_LIMITS: ListenLimits = {
  maxSessions: 200,
  // Phones behind one carrier NAT share an address: a cap that stops one client from taking every
  // slot, not one that assumes an address per person.
  maxSessionsPerAddress: 20,
  maxSeconds: 30,
  maxChunkBytes: 128 * 1024,
  startSeconds: 5,
  idleSeconds: 10,
  paceFactor: 2,
  paceBurstSeconds: 5,
  // Half of real time over 15 s lets a phone's network stall for 7 s and catch up; a trickle that
  // keeps the idle timer quiet delivers almost nothing.
  minAudioRate: 0.5,
  rateWindowSeconds: 15,
  drainSeconds: 30,
};

/** Milliseconds of the server's time: the wall clock less any stall of the event loop. */
export class ServerClock {
  private base = 0;
  private wallAtBase = performance.now();
  private readonly timer: NodeJS.Timeout;

  /** `tickMs`: how often it advances; a gap longer than tickMs + slack is a stall, not time. */
  constructor(
    private readonly tickMs = 1000,
    private readonly slackMs = 250,
  ) {
    this.timer = setInterval(() => {
      this.base = this.now();
      this.wallAtBase = performance.now();
    }, tickMs);
    this.timer.unref();
  }

  now(): number {
    return this.base + Math.min(performance.now() - this.wallAtBase, this.tickMs + this.slackMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Audio delivered per second over a recent window. Chunks are stamped when they arrive; the
 * matching thread says how many chunks it has decoded into how many seconds. While it is behind,
 * the rate is judged up to the arrival of the last chunk it decoded, never up to now.
 */
export class AudioRate {
  /** Arrival times of chunks the thread has not accounted for yet, oldest first. */
  private readonly pending: number[] = [];
  /** Seconds decoded from the chunks that arrived by time t, increasing in t. */
  private readonly points: { t: number; heard: number }[];
  private accounted = 0;
  private sent = 0;

  constructor(private readonly startedAt: number) {
    this.points = [{ t: startedAt, heard: 0 }];
  }

  arrived(t: number): void {
    this.pending.push(t);
    this.sent++;
  }

  /** The thread has decoded the first `chunks` chunks into `heard` seconds of audio. */
  decoded(chunks: number, heard: number, window: number): void {
    let t = this.points.at(-1)!.t;
    for (; this.accounted < chunks && this.pending.length; this.accounted++) t = this.pending.shift()!;
    this.points.push({ t, heard });
    // One point at or before the oldest window start still asked for is kept.
    while (this.points.length > 2 && this.points[1]!.t <= t - window) this.points.shift();
  }

  /** Seconds of audio per second over the last `window` ms known; undefined during the first window. */
  rate(now: number, window: number): number | undefined {
    const last = this.points.at(-1)!;
    const known = this.accounted === this.sent ? now : last.t;
    if (known - this.startedAt < window) return undefined;
    const from = known - window;
    let before = this.points[0]!;
    for (const p of this.points) if (p.t <= from) before = p;
    return (last.heard - before.heard) / (window / 1000);
  }
}
