// The WebSocket transport of live listening (the `ws` package; the only module that knows it):
// upgrades on /api/v1/listen, one ListenSession per connection, JSON text messages validated
// against the protocol, binary messages as audio, heartbeats and idle timers, a cap on sessions.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { AppError, publicError, wsCloseCode } from '../base/errors.js';
import { log } from '../base/log.js';
import type { Engine } from '../engine/engine.js';
import { StartMessage, StopMessage, type ServerMessage } from '../api/protocol.js';
import { DEFAULT_LIMITS, ListenSession, type ListenLimits } from './session.js';

export const LISTEN_PATH = '/api/v1/listen';

interface Connection {
  ws: WebSocket;
  session?: ListenSession;
  alive: boolean;
  idle?: NodeJS.Timeout;
}

export class ListenService {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly heartbeat: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly engine: Engine,
    server: Server,
    private readonly limits: ListenLimits = DEFAULT_LIMITS,
  ) {
    // Chunks up to a few times the limit reach the session, which refuses them with a reason;
    // beyond that ws itself closes with 1009.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxChunkBytes * 4 });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== LISTEN_PATH || this.closing) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
    // A client that vanished without closing stops answering pings: dropped at the next beat.
    this.heartbeat = setInterval(
      () => {
        for (const c of this.connections) {
          if (!c.alive) {
            c.ws.terminate();
            continue;
          }
          c.alive = false;
          c.ws.ping();
        }
      },
      (limits.idleSeconds * 1000) / 2,
    );
    this.heartbeat.unref();
  }

  /** Open connections, and the sessions of each matching thread. */
  stats(): { sessions: number; threads: number[] } {
    return { sessions: this.connections.size, threads: this.engine.threadStats().sessions };
  }

  /** Closes every session (1001) and waits until their connections are gone. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    const gone = [...this.connections].map(async (c) => {
      const closed = new Promise<void>((resolve) => c.ws.once('close', () => resolve()));
      c.session?.abort();
      c.ws.close(wsCloseCode('SHUTTING_DOWN'), 'server shutting down');
      setTimeout(() => c.ws.terminate(), 2000).unref();
      await closed;
    });
    await Promise.all(gone);
    this.wss.close();
  }

  private accept(ws: WebSocket): void {
    if (this.connections.size >= this.limits.maxSessions) {
      ws.close(wsCloseCode('OVERLOADED'), `too many listening sessions (${this.limits.maxSessions}); try again later`);
      return;
    }
    const c: Connection = { ws, alive: true };
    this.connections.add(c);
    this.touch(c);
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      c.alive = true;
      try {
        if (isBinary) this.onAudio(c, toBuffer(data));
        else this.onText(c, toBuffer(data).toString('utf8'));
      } catch (e) {
        this.refuse(c, e);
      }
    });
    ws.on('close', () => {
      clearTimeout(c.idle);
      c.session?.abort();
      this.connections.delete(c);
    });
    ws.on('error', (e) => log.warn('listen connection error', { error: e.message }));
  }

  private onAudio(c: Connection, chunk: Buffer): void {
    if (!c.session) throw new AppError('PROTOCOL_ERROR', 'binary audio before the start message');
    this.touch(c);
    c.session.audio(chunk);
  }

  private onText(c: Connection, text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new AppError('PROTOCOL_ERROR', 'a text message must be a JSON object');
    }
    const type = (raw as { type?: unknown } | null)?.type;
    const schema = type === 'start' ? StartMessage : type === 'stop' ? StopMessage : undefined;
    if (!schema) throw new AppError('PROTOCOL_ERROR', `unknown message type ${JSON.stringify(type)}`);
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      if (type === 'start' && issue?.path[0] === 'format') {
        throw new AppError(
          'UNSUPPORTED_FORMAT',
          `unsupported format ${JSON.stringify((raw as { format?: unknown }).format)}: use webm-opus, ogg-opus or pcm-f32le`,
        );
      }
      throw new AppError('PROTOCOL_ERROR', `invalid ${type} message: ${issue?.path.join('.') || 'message'}: ${issue?.message}`);
    }
    const msg = parsed.data;
    if (msg.type === 'stop') {
      if (!c.session) throw new AppError('PROTOCOL_ERROR', 'stop before start');
      c.session.stop();
      return;
    }
    if (c.session) throw new AppError('PROTOCOL_ERROR', 'start sent twice');
    if (msg.mode === 'vibe') this.engine.requireVibe();
    const id = randomUUID();
    c.session = new ListenSession(id, msg, this.engine, this.limits, {
      send: (m) => send(c.ws, m),
      close: (code, reason) => closeWs(c.ws, code, reason),
    });
    send(c.ws, {
      type: 'ready',
      session_id: id,
      limits: {
        max_seconds: msg.continuous ? null : this.limits.maxSeconds,
        max_chunk_bytes: this.limits.maxChunkBytes,
        idle_seconds: this.limits.idleSeconds,
      },
      lanes: { exact: msg.mode === 'vibe' ? 'off' : 'on', vibe: msg.mode !== 'exact' && this.engine.vibeStatus().on ? 'on' : 'off' },
    });
  }

  /** Restarts the no-audio timer. */
  private touch(c: Connection): void {
    clearTimeout(c.idle);
    c.idle = setTimeout(() => this.refuse(c, new AppError('IDLE_TIMEOUT', `no audio for ${this.limits.idleSeconds} s`)), this.limits.idleSeconds * 1000);
    c.idle.unref();
  }

  private refuse(c: Connection, e: unknown): void {
    if (c.session) {
      c.session.fail(e);
      return;
    }
    const { code, message } = publicError(e, { path: LISTEN_PATH });
    send(c.ws, { type: 'error', code, message });
    closeWs(c.ws, wsCloseCode(code), message);
  }
}

// A close reason holds at most 123 bytes.
function closeWs(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, Buffer.from(reason).subarray(0, 123).toString());
}

function send(ws: WebSocket, msg: ServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
