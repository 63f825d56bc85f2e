// One live listening session: the microphone, MediaRecorder slices of WebM/Opus sent over the
// WebSocket as they come, the input level for the meter, and the server's messages handed on.
// Failures before audio flows are told apart (no microphone, permission refused, server
// unreachable) because the page offers the upload instead.
import { explain, explainClose, type ServerMessage } from './api.js';

const MIME = 'audio/webm;codecs=opus';
const SLICE_MS = 250;

/** Why live listening cannot start here: the page says which and offers the upload. */
export type Unavailable = 'unsupported' | 'no-microphone' | 'denied' | 'unreachable';

export interface SessionEvents {
  /** The server is ready and audio is flowing. */
  started(lanes: { exact: string; vibe: string }): void;
  message(m: ServerMessage): void;
  /** Live listening could not start. */
  unavailable(why: Unavailable, detail: string): void;
  /** The session is over: `problem` is a sentence when it ended abnormally. */
  ended(problem: string | undefined): void;
}

export class ListenSession {
  private stream: MediaStream | undefined;
  private recorder: MediaRecorder | undefined;
  private ws: WebSocket | undefined;
  private audio: AudioContext | undefined;
  private analyser: AnalyserNode | undefined;
  private samples: Float32Array<ArrayBuffer> | undefined;
  private problem: string | undefined;
  private done = false;

  constructor(
    private readonly events: SessionEvents,
    private readonly continuous: boolean,
  ) {}

  async start(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined' || !MediaRecorder.isTypeSupported(MIME)) {
      return this.unavailable('unsupported', 'This browser cannot record the microphone as Opus audio.');
    }
    try {
      // Music, not speech: the voice processing would filter out what identifies the track.
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    } catch (e) {
      const name = (e as DOMException).name;
      if (name === 'NotAllowedError' || name === 'SecurityError') return this.unavailable('denied', 'Permission to use the microphone was refused.');
      return this.unavailable('no-microphone', 'No microphone was found on this device.');
    }
    if (this.done) return this.releaseMicrophone(); // stopped while the permission was asked
    this.meter(this.stream);
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/listen`;
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: 'start', format: 'webm-opus', mode: 'both', continuous: this.continuous }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      const m = JSON.parse(ev.data) as ServerMessage;
      if (m.type === 'ready') {
        this.record();
        this.events.started(m.lanes);
      } else if (m.type === 'error') {
        this.problem = explain(m);
      }
      this.events.message(m);
    };
    ws.onclose = (ev) => {
      if (!opened) return this.unavailable('unreachable', 'The listening service on the server could not be reached.');
      if (ev.code !== 1000 && !this.problem) this.problem = explainClose(ev.code, ev.reason);
      this.finish();
    };
  }

  /** Ends the session: the last slice goes out, then `stop`; the server answers and closes. */
  stop(): void {
    if (!this.ws) {
      this.finish(); // nothing sent yet
      return;
    }
    const r = this.recorder;
    if (r && r.state !== 'inactive') {
      r.addEventListener('stop', () => this.sendStop(), { once: true });
      r.stop();
    } else {
      this.sendStop();
    }
    this.releaseMicrophone();
  }

  /** The input level, 0..1 on a dB scale from -60 dBFS, for the meter. */
  level(): number {
    if (!this.analyser || !this.samples) return 0;
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const x of this.samples) sum += x * x;
    const db = 10 * Math.log10(sum / this.samples.length + 1e-12);
    return Math.min(1, Math.max(0, (db + 60) / 60));
  }

  private record(): void {
    if (!this.stream || this.recorder) return;
    const r = new MediaRecorder(this.stream, { mimeType: MIME });
    r.ondataavailable = (ev) => {
      if (ev.data.size > 0 && this.ws?.readyState === WebSocket.OPEN) this.ws.send(ev.data);
    };
    r.start(SLICE_MS);
    this.recorder = r;
  }

  private meter(stream: MediaStream): void {
    this.audio = new AudioContext();
    this.analyser = this.audio.createAnalyser();
    this.analyser.fftSize = 2048;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.audio.createMediaStreamSource(stream).connect(this.analyser);
  }

  private sendStop(): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'stop' }));
  }

  private releaseMicrophone(): void {
    if (this.recorder && this.recorder.state !== 'inactive') this.recorder.stop();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    void this.audio?.close();
    this.audio = undefined;
    this.analyser = undefined;
  }

  private unavailable(why: Unavailable, detail: string): void {
    this.releaseMicrophone();
    if (this.done) return;
    this.done = true;
    this.events.unavailable(why, detail);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.releaseMicrophone();
    this.events.ended(this.problem);
  }
}
