// A listening client as a browser behaves: `start`, audio chunks at real-time pace, `stop`;
// records every server message with the time it arrived. Used by the tests and bench:stream.
import WebSocket from 'ws';

export interface Received {
  at: number; // ms since the socket opened
  msg: { type: string; [k: string]: unknown };
}

export interface ListenResult {
  received: Received[];
  code: number;
  reason: string;
  /** When each audio chunk was sent, ms since the socket opened. */
  sentAt: number[];
}

export interface StreamOptions {
  start: Record<string, unknown>;
  /** Audio bytes and the seconds of audio they hold (for pacing). */
  audio: Buffer;
  seconds: number;
  /** One chunk per this many ms of audio (MediaRecorder slices are 250 ms). */
  sliceMs?: number;
  /** 1 = real time. */
  speed?: number;
  /** Send `stop` after the audio (else leave the socket open until the server closes). */
  stop?: boolean;
  /** Called with the socket once open, for tests that misbehave on purpose. */
  onOpen?: (ws: WebSocket) => void;
}

/** The bytes per chunk that `listen` sends for these options: one slice of audio each. */
export function chunkBytes(o: Pick<StreamOptions, 'audio' | 'seconds' | 'sliceMs'>): number {
  return Math.max(1, Math.ceil((o.audio.length * (o.sliceMs ?? 250)) / 1000 / o.seconds));
}

export function listen(url: string, o: StreamOptions): Promise<ListenResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const received: Received[] = [];
    const sentAt: number[] = [];
    let openedAt = 0;
    let timer: NodeJS.Timeout | undefined;
    ws.on('open', () => {
      openedAt = performance.now();
      o.onOpen?.(ws);
      ws.send(JSON.stringify(o.start));
      const slice = o.sliceMs ?? 250;
      const per = chunkBytes(o);
      let at = 0;
      const tick = () => {
        if (ws.readyState !== ws.OPEN) return;
        if (at >= o.audio.length) {
          if (o.stop !== false) ws.send(JSON.stringify({ type: 'stop' }));
          return;
        }
        ws.send(o.audio.subarray(at, at + per));
        sentAt.push(performance.now() - openedAt);
        at += per;
        timer = setTimeout(tick, slice / (o.speed ?? 1));
      };
      tick();
    });
    ws.on('message', (data) => received.push({ at: performance.now() - openedAt, msg: JSON.parse(data.toString()) }));
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ received, code, reason: reason.toString(), sentAt });
    });
    ws.on('error', reject);
  });
}

export const results = (r: ListenResult) =>
  r.received.map((x) => x.msg).filter((m) => m.type === 'result') as unknown as {
    lane: 'exact' | 'vibe';
    status: 'provisional' | 'final';
    heard_seconds: number;
    changed_at_seconds?: number;
    matches: { track: { file_name: string }; offset_seconds: number; position_seconds: number; aligned_hashes: number }[];
  }[];
