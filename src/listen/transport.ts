// The WebSocket transport of live listening (the `ws` package; the only module that knows it):
// upgrades on /api/v1/listen, one ListenSession per connection, JSON text messages validated
// against the protocol, binary messages as audio, and the limits of limits.ts. Everything a
// client's frames set off runs inside its connection's context: a failure there, even one that
// escapes to the process (failCurrent), ends that connection only.
import { clientAddress } from '../base/address.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { AppError, publicError, wsCloseCode } from '../base/errors.js';
import { log } from '../base/log.js';
import { quote, utf8Prefix } from '../base/text.js';
import type { Engine } from '../engine/engine.js';
import { StartMessage, StopMessage, type ServerMessage } from '../api/protocol.js';
import { DEFAULT_LIMITS, ServerClock, type ListenLimits } from './limits.js';
import { ListenSession } from './session.js';

export const LISTEN_PATH = '/api/v1/listen';
/** A close frame's reason holds at most 123 bytes of UTF-8. */
const MAX_REASON_BYTES = 123;
const PING_MS = 5000;
/** A connection that sends no frame (not even a pong) this long is gone. */
const SILENT_MS = 2 * PING_MS + 1000;

interface Connection {
  ws: WebSocket;
  address: string;
  openedAt: number;
  /** Server time of the last frame of any kind, pongs included. */
  lastHeard: number;
  lastPing: number;
  session?: ListenSession;
}

export interface ListenOptions {
  /** Take the client's address from X-Forwarded-For (behind a reverse proxy). */
  trustProxy?: boolean;
}

export class ListenService {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private readonly clock = new ServerClock();
  private readonly context = new AsyncLocalStorage<Connection>();
  private readonly checks: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly engine: Engine,
    server: Server,
    private readonly limits: ListenLimits = DEFAULT_LIMITS,
    private readonly options: ListenOptions = {},
  ) {
    // Chunks up to a few times the limit reach the session, which refuses them with a reason;
    // beyond that ws itself closes with 1009.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxChunkBytes * 4 });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== LISTEN_PATH || this.closing) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      const address = this.addressOf(req);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, address));
    });
    // A timer runs before the loop reads sockets; the checks wait for that read (setImmediate), so
    // that frames which arrived while the server was busy count before anyone is judged idle.
    this.checks = setInterval(() => setImmediate(() => this.check()), 1000);
    this.checks.unref();
  }

  /** Open connections, and the sessions of each matching thread. */
  stats(): { sessions: number; threads: number[] } {
    return { sessions: this.connections.size, threads: this.engine.threadStats().sessions };
  }

  /**
   * Ends the connection whose frames led to the error being handled, if any: for the process's
   * last-resort handlers. False when the error did not come from a connection.
   */
  failCurrent(e: unknown): boolean {
    const c = this.context.getStore();
    if (!c) return false;
    this.refuse(c, e);
    return true;
  }

  /** Closes every session (1001) and waits until their connections are gone. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.checks);
    this.clock.stop();
    const gone = [...this.connections].map(async (c) => {
      const closed = new Promise<void>((resolve) => c.ws.once('close', () => resolve()));
      c.session?.abort();
      closeWs(c.ws, wsCloseCode('SHUTTING_DOWN'), 'server shutting down');
      setTimeout(() => c.ws.terminate(), 2000).unref();
      await closed;
    });
    await Promise.all(gone);
    this.wss.close();
  }

  private addressOf(req: IncomingMessage): string {
    return clientAddress(req.headers['x-forwarded-for'], req.socket.remoteAddress, this.options.trustProxy ?? false);
  }

  private accept(ws: WebSocket, address: string): void {
    if (this.connections.size >= this.limits.maxSessions) {
      closeWs(ws, wsCloseCode('OVERLOADED'), `too many listening sessions (${this.limits.maxSessions}); try again later`);
      return;
    }
    const fromHere = this.perAddress.get(address) ?? 0;
    if (fromHere >= this.limits.maxSessionsPerAddress) {
      closeWs(ws, wsCloseCode('TOO_MANY_SESSIONS'), `too many listening sessions from one address (${this.limits.maxSessionsPerAddress})`);
      return;
    }
    const now = this.clock.now();
    const c: Connection = { ws, address, openedAt: now, lastHeard: now, lastPing: now };
    this.connections.add(c);
    this.perAddress.set(address, fromHere + 1);
    ws.on('pong', () => (c.lastHeard = this.clock.now()));
    ws.on('message', (data: RawData, isBinary: boolean) =>
      this.context.run(c, () => {
        c.lastHeard = this.clock.now();
        try {
          if (isBinary) this.onAudio(c, toBuffer(data));
          else this.onText(c, toBuffer(data).toString('utf8'));
        } catch (e) {
          this.refuse(c, e);
        }
      }),
    );
    ws.on('close', () => this.forget(c));
    ws.on('error', (e) => log.warn('listen connection error', { error: e.message }));
  }

  private forget(c: Connection): void {
    if (!this.connections.delete(c)) return;
    c.session?.abort();
    const left = (this.perAddress.get(c.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(c.address, left);
    else this.perAddress.delete(c.address);
  }

  private onAudio(c: Connection, chunk: Buffer): void {
    if (!c.session) throw new AppError('PROTOCOL_ERROR', 'binary audio before the start message');
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
    if (!schema) throw new AppError('PROTOCOL_ERROR', `unknown message type ${quote(type)}`);
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      if (type === 'start' && issue?.path[0] === 'format') {
        throw new AppError('UNSUPPORTED_FORMAT', `unsupported format ${quote((raw as { format?: unknown }).format)}: use webm-opus, ogg-opus or pcm-f32le`);
      }
      const where = issue?.path.map((p) => quote(String(p), 24)).join('.') || 'message';
      throw new AppError('PROTOCOL_ERROR', `invalid ${type} message: ${where}: ${quote(issue?.message ?? 'invalid', 60)}`);
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
    c.session = new ListenSession(id, msg, this.engine, this.limits, () => this.clock.now(), {
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

  /** Start, idle, rate and heartbeat limits, on the server's clock. */
  private check(): void {
    const now = this.clock.now();
    for (const c of this.connections) {
      this.context.run(c, () => {
        try {
          if (now - c.lastHeard > SILENT_MS) {
            c.ws.terminate();
            return;
          }
          if (now - c.lastPing >= PING_MS) {
            c.lastPing = now;
            c.ws.ping();
          }
          if (c.session) c.session.check();
          else if (now - c.openedAt > this.limits.startSeconds * 1000) {
            throw new AppError('START_TIMEOUT', `no start message within ${this.limits.startSeconds} s`);
          }
        } catch (e) {
          this.refuse(c, e);
        }
      });
    }
  }

  private refuse(c: Connection, e: unknown): void {
    try {
      if (c.session) {
        c.session.fail(e);
        return;
      }
      const { code, message } = publicError(e, { path: LISTEN_PATH });
      send(c.ws, { type: 'error', code, message });
      closeWs(c.ws, wsCloseCode(code), message);
    } catch (again) {
      // Failing to close politely must not leave the connection open, nor escape.
      log.error('listen connection could not be closed cleanly', { error: String(again) });
      c.ws.terminate();
    }
  }
}

function closeWs(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, utf8Prefix(reason, MAX_REASON_BYTES));
}

function send(ws: WebSocket, msg: ServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
