// Replays one fuzz case against a running server (a real WebSocket client, or raw bytes on a TCP
// socket for HTTP, so that nothing between the case and the server tidies it up), and judges what
// came back by what docs/protocol.md and the README document. Shared by the fuzzer and by
// test/fuzz.test.ts.
import net from 'node:net';
import WebSocket from 'ws';
import { httpStatus, isErrorCode, wsCloseCode } from '../src/base/errors.js';
import { type FuzzCase, type HttpCase, type ListenCase, type Resources, resolve } from './fuzz-cases.js';

/** The close codes docs/protocol.md names. */
const CLOSE_CODES: readonly number[] = [1000, 1001, 1003, 1007, 1008, 1009, 1011, 1013, 4408, 4409, 4429, 4430];
/** What Node's HTTP parser answers itself, with an empty body, to a request it cannot read. */
const PARSER_STATUSES = new Set([400, 408, 417, 431]);
const MAX_REASON_BYTES = 123;

export interface ListenOutcome {
  kind: 'listen';
  opened: boolean;
  /** Text messages as received. */
  messages: string[];
  binaryMessages: number;
  close?: { code: number; reason: string };
  /** Who ended the connection: the server with a close frame, the client on purpose, or a TCP drop. */
  closedBy?: 'server' | 'client' | 'drop';
  clientError?: string;
  /** No close within the deadline after the last step. */
  timedOut: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}
export interface HttpOutcome {
  kind: 'http';
  method: string;
  path: string;
  responses: HttpResponse[];
  socketError?: string;
  timedOut: boolean;
}
export type Outcome = ListenOutcome | HttpOutcome;

export interface Failure {
  kind: string;
  /** What makes two failures the same one, for de-duplication. */
  signature: string;
  detail: string;
}

export interface Target {
  /** http://host:port of the server. */
  url: string;
  res: Resources;
  /** How long a connection may stay open after the case's last step (WebSocket) or write (HTTP). */
  deadlineMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function replay(c: FuzzCase, t: Target): Promise<Outcome> {
  return c.kind === 'listen' ? replayListen(c, t) : replayHttp(c, t);
}

async function replayListen(c: ListenCase, t: Target): Promise<ListenOutcome> {
  const o: ListenOutcome = { kind: 'listen', opened: false, messages: [], binaryMessages: 0, timedOut: false };
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/v1/listen`, { handshakeTimeout: 10_000 });
  let destroyed = false;
  const closed = new Promise<void>((resolve) => {
    ws.on('close', (code, reason) => {
      o.close = { code, reason: reason.toString() };
      o.closedBy = destroyed ? 'client' : code === 1006 ? 'drop' : 'server';
      resolve();
    });
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) o.binaryMessages++;
    else o.messages.push(data.toString());
  });
  ws.on('error', (e) => (o.clientError ??= e.message));
  o.opened = await Promise.race([new Promise<boolean>((r) => ws.once('open', () => r(true))), closed.then(() => false)]);
  for (const step of o.opened ? c.steps : []) {
    if (ws.readyState !== ws.OPEN) break;
    if (step.op === 'wait') await Promise.race([sleep(step.ms), closed]);
    else if (step.op === 'destroy') {
      destroyed = true;
      ws.terminate();
      break;
    } else if (step.op === 'chunks') {
      for (let i = 0, at = step.from; i < step.sizes.length && ws.readyState === ws.OPEN; at += step.sizes[i]!, i++) {
        const slice = { audio: step.audio, from: at, to: at + step.sizes[i]!, ...(step.flips ? { flips: step.flips } : {}) };
        ws.send(resolve([slice], t.res), { binary: true });
        if (step.waits[i]) await Promise.race([sleep(step.waits[i]!), closed]);
      }
    } else ws.send(resolve(step.data, t.res), { binary: step.op === 'binary' });
  }
  if (!o.close) {
    const timer = sleep(t.deadlineMs).then(() => 'late' as const);
    if ((await Promise.race([closed, timer])) === 'late') {
      o.timedOut = true;
      destroyed = true;
      ws.terminate();
    }
    await closed;
  }
  return o;
}

async function replayHttp(c: HttpCase, t: Target): Promise<HttpOutcome> {
  const raw = resolve(c.request, t.res);
  const [method = '', target = ''] = raw
    .subarray(0, Math.max(0, raw.indexOf('\r\n')))
    .toString('latin1')
    .split(' ');
  const o: HttpOutcome = { kind: 'http', method, path: target, responses: [], timedOut: false };
  const { hostname, port } = new URL(t.url);
  const received: Buffer[] = [];
  const socket = net.connect(Number(port), hostname);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('data', (b) => received.push(b));
  socket.on('error', (e: NodeJS.ErrnoException) => (o.socketError ??= e.code ?? e.message));
  socket.once('connect', () => {
    socket.write(raw);
    if (c.after === 'half-close') socket.end();
  });
  if (typeof c.after === 'object') {
    await Promise.race([sleep(c.after.destroyAfterMs), closed]);
    socket.destroy();
  }
  const late = await Promise.race([closed.then(() => false), sleep(t.deadlineMs).then(() => true)]);
  if (late) {
    o.timedOut = true;
    socket.destroy();
    await closed;
  }
  o.responses = parseResponses(Buffer.concat(received), method);
  return o;
}

/** The final responses in a byte stream (1xx interim ones skipped), as far as they are complete. */
function parseResponses(buf: Buffer, method: string): HttpResponse[] {
  const out: HttpResponse[] = [];
  let at = 0;
  while (at < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const [statusLine = '', ...lines] = buf.subarray(at, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!m) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let pos = headEnd + 4;
    let body: Buffer = Buffer.alloc(0);
    if (status >= 200 && status !== 204 && status !== 304 && method !== 'HEAD') {
      if (headers['transfer-encoding']?.includes('chunked')) {
        const parts: Buffer[] = [];
        for (;;) {
          const eol = buf.indexOf('\r\n', pos);
          if (eol < 0) break;
          const n = Number.parseInt(buf.subarray(pos, eol).toString('latin1'), 16);
          pos = eol + 2;
          if (!(n > 0)) {
            pos += 2;
            break;
          }
          parts.push(buf.subarray(pos, pos + n));
          pos += n + 2;
        }
        body = Buffer.concat(parts);
      } else if (headers['content-length'] !== undefined) {
        body = buf.subarray(pos, pos + Number(headers['content-length']));
        pos += body.length;
      } else {
        body = buf.subarray(pos);
        pos = buf.length;
      }
    }
    if (status >= 200) out.push({ status, headers, body: body.toString('utf8') });
    at = pos;
  }
  return out;
}

/** The route of a request target, for grouping: no query, track ids as :id. */
const route = (target: string) => target.split('?')[0]!.replace(/^(\/api\/v1\/tracks\/).+$/, '$1:id');

const clip = (s: string, n = 400) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

function typedError(body: string): { code: string; message: string } | undefined {
  try {
    const e = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
    return typeof e?.code === 'string' && typeof e.message === 'string' ? { code: e.code, message: e.message } : undefined;
  } catch {
    return undefined;
  }
}

function checkHttp(c: HttpCase, o: HttpOutcome): Failure[] {
  const failures: Failure[] = [];
  const where = `${o.method} ${route(o.path)}`;
  for (const r of o.responses) {
    const err = typedError(r.body);
    if (r.status >= 500) {
      failures.push({
        kind: 'http_5xx',
        signature: `http_5xx ${r.status} ${where} ${err?.code ?? '-'}`,
        detail: `${o.method} ${clip(o.path, 200)} -> ${r.status} ${clip(r.body)}`,
      });
    } else if (r.status >= 400 && o.method !== 'HEAD') {
      const parserRefusal = r.body === '' && PARSER_STATUSES.has(r.status);
      if (!parserRefusal && (!err || !isErrorCode(err.code) || httpStatus(err.code) !== r.status)) {
        failures.push({
          kind: 'untyped_error',
          signature: `untyped_error ${r.status} ${where} ${err?.code ?? '-'}`,
          detail: `${o.method} ${clip(o.path, 200)} -> ${r.status} ${clip(r.body)} (errors are {"error":{"code","message"}} with the status of the code's row)`,
        });
      }
    } else if (r.status >= 200 && r.status < 300 && r.status !== 204 && o.method !== 'HEAD') {
      try {
        JSON.parse(r.body);
      } catch {
        failures.push({
          kind: 'bad_body',
          signature: `bad_body ${r.status} ${where}`,
          detail: `${o.method} ${clip(o.path, 200)} -> ${r.status} ${clip(r.body)}`,
        });
      }
    }
  }
  const first = o.responses[0];
  if (!first && (o.timedOut || (c.after === 'wait' && !o.socketError))) {
    failures.push({
      kind: 'no_response',
      signature: `no_response ${where} ${o.timedOut ? 'hang' : 'closed'}`,
      detail: `${o.method} ${clip(o.path, 200)}: ${o.timedOut ? 'no answer and no close within the deadline' : 'closed without an answer'}`,
    });
  }
  if (first && first.status < 500 && c.expect) {
    const err = typedError(first.body);
    const bodyOk = c.expect.bodyIncludes === undefined || first.body.includes(c.expect.bodyIncludes);
    if (!c.expect.status.includes(first.status) || (c.expect.code !== undefined && err?.code !== c.expect.code) || !bodyOk) {
      failures.push({
        kind: 'unexpected_status',
        signature: `unexpected_status ${c.family} ${first.status} ${err?.code ?? '-'}`,
        detail:
          `${o.method} ${clip(o.path, 200)} -> ${first.status} ${clip(first.body)}; documented: ${c.expect.status.join('|')} ${c.expect.code ?? ''}` +
          (c.expect.bodyIncludes === undefined ? '' : `, a body with ${JSON.stringify(c.expect.bodyIncludes)}`),
      });
    }
  }
  return failures;
}

const SERVER_TYPES = new Set(['ready', 'result', 'no_match', 'error']);

function checkListen(c: ListenCase, o: ListenOutcome, dropIsFailure: boolean): Failure[] {
  const failures: Failure[] = [];
  // A failure against a case's own expectation is told apart by its family; the others by what went wrong.
  const fail = (kind: string, sig: string, detail: string) =>
    failures.push({ kind, signature: kind === 'unexpected_close' ? `${kind} ${c.family} ${sig}` : `${kind} ${sig}`, detail });
  if (!o.opened) {
    // A refused upgrade while the server runs; a dead server is the fuzzer's own finding.
    if (o.closedBy !== 'drop' || !/ECONNREFUSED|ECONNRESET|socket hang up/.test(o.clientError ?? ''))
      fail('no_upgrade', o.clientError ?? '-', o.clientError ?? 'the upgrade failed');
    return failures;
  }
  let error: { code: string; message: string } | undefined;
  for (const text of o.messages) {
    let m: { type?: unknown; code?: unknown; message?: unknown } | undefined;
    try {
      m = JSON.parse(text);
    } catch {
      // judged below
    }
    if (!m || typeof m !== 'object' || !SERVER_TYPES.has(m.type as string)) fail('bad_message', '-', `not a protocol message: ${clip(text)}`);
    else if (m.type === 'error' && !error) error = { code: String(m.code), message: String(m.message) };
  }
  if (o.binaryMessages) fail('bad_message', 'binary', `${o.binaryMessages} binary message(s) from the server`);
  if (o.timedOut) fail('no_close', '-', 'the connection stayed open past the deadline after the last step, with no close from the server');
  if (o.clientError && o.closedBy === 'drop')
    fail('client_error', o.clientError.replace(/\d+/g, 'N'), `the client refused what the server sent: ${o.clientError}`);
  const close = o.close;
  if (close && o.closedBy === 'server') {
    if (!CLOSE_CODES.includes(close.code))
      fail('bad_close_code', String(close.code), `close ${close.code} ${JSON.stringify(close.reason)} is not a documented code`);
    // 1011 is documented for the server's own failures (a matching thread that died), never as the answer to input.
    if (close.code === 1011)
      fail(
        'internal_error',
        '1011',
        `closed 1011 ${JSON.stringify(close.reason)}: an internal failure on this input (the server's log names it under the ref)`,
      );
    if (error) {
      if (!isErrorCode(error.code)) fail('bad_error_code', error.code, `error code ${error.code} is not in the table`);
      else if (wsCloseCode(error.code) !== close.code) {
        fail(
          'error_close_mismatch',
          `${error.code} ${close.code}`,
          `error ${error.code} must close with ${wsCloseCode(error.code)}, closed with ${close.code}`,
        );
      }
      // A message too long for a close frame is cut, perhaps marked with an ellipsis.
      const fits = Buffer.byteLength(error.message) <= MAX_REASON_BYTES;
      const stem = close.reason.endsWith('…') ? close.reason.slice(0, -1) : close.reason;
      if (fits ? close.reason !== error.message : !error.message.startsWith(stem) || stem === '') {
        fail('bad_close_reason', '-', `close reason ${JSON.stringify(close.reason)} does not repeat the message ${JSON.stringify(clip(error.message, 200))}`);
      }
    }
  }
  // A TCP drop without a close frame is judged by whether the server survived it (the fuzzer's
  // part), unless the caller knows it did.
  if (c.expect && (o.closedBy === 'server' || o.timedOut || (dropIsFailure && o.closedBy === 'drop'))) {
    const code = close?.code;
    const codeOk = code !== undefined && o.closedBy === 'server' && c.expect.close.includes(code);
    const errorOk = c.expect.error === undefined || (c.expect.error === null ? !error : error?.code === c.expect.error);
    if (!codeOk || !errorOk) {
      fail(
        'unexpected_close',
        `${code ?? '-'} ${error?.code ?? '-'}`,
        `closed ${code ?? 'never'} (${o.closedBy ?? '-'}) ${JSON.stringify(close?.reason ?? '')}, error ${error?.code ?? 'none'}; ` +
          `documented: ${c.expect.close.join('|')}${c.expect.error === undefined ? '' : `, error ${c.expect.error ?? 'none'}`}`,
      );
    }
  }
  return failures;
}

/**
 * What went against the documentation in this outcome. `dropIsFailure`: a WebSocket dropped
 * without a close frame fails a case's expectation (for a server known to be still running).
 */
export function check(c: FuzzCase, o: Outcome, opts: { dropIsFailure?: boolean } = {}): Failure[] {
  return c.kind === 'listen' ? checkListen(c, o as ListenOutcome, opts.dropIsFailure ?? false) : checkHttp(c, o as HttpOutcome);
}

/** The outcome in a line's worth of fields, for logs and seeds. */
export function summarize(o: Outcome): Record<string, unknown> {
  if (o.kind === 'http') {
    return {
      request: `${o.method} ${clip(o.path, 120)}`,
      responses: o.responses.map((r) => `${r.status} ${clip(r.body, 300)}`),
      ...(o.socketError ? { socketError: o.socketError } : {}),
      ...(o.timedOut ? { timedOut: true } : {}),
    };
  }
  return {
    close: o.close ? `${o.close.code} ${JSON.stringify(o.close.reason)}` : null,
    closedBy: o.closedBy ?? null,
    messages: o.messages.map((m) => clip(m, 200)).slice(-4),
    ...(o.clientError ? { clientError: o.clientError } : {}),
    ...(o.timedOut ? { timedOut: true } : {}),
  };
}
