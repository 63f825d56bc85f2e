// Typed errors with stable codes, and the one table that maps each code to an HTTP status and a
// WebSocket close code. The CLI prints code and message; clients never see an INTERNAL error's
// own text (publicError).
import { randomUUID } from 'node:crypto';
import { log } from './log.js';

const TABLE = {
  FILE_NOT_FOUND: { http: 404, ws: 1008 },
  UNSUPPORTED_FORMAT: { http: 415, ws: 1003 },
  /** A request body of a type the endpoint does not take (not multipart/form-data). */
  UNSUPPORTED_MEDIA_TYPE: { http: 415, ws: 1003 },
  DECODE_FAILED: { http: 422, ws: 1007 },
  AUDIO_TOO_SHORT: { http: 422, ws: 1007 },
  FILE_TOO_LARGE: { http: 413, ws: 1009 },
  TRACK_NOT_FOUND: { http: 404, ws: 1008 },
  /** Ingest: the same content is being ingested by another process, or twice in one batch. */
  DUPLICATE_IN_PROGRESS: { http: 409, ws: 1008 },
  DUPLICATE_IN_BATCH: { http: 409, ws: 1008 },
  INDEX_MISMATCH: { http: 500, ws: 1011 },
  /** The fingerprint index cannot be read (a damaged data file). */
  INDEX_CORRUPT: { http: 503, ws: 1011 },
  /** The data dir cannot be written: full disk, read-only or missing; the message names the path. */
  STORAGE_ERROR: { http: 507, ws: 1011 },
  INVALID_ARGUMENT: { http: 400, ws: 1008 },
  UNAUTHORIZED: { http: 401, ws: 1008 },
  NOT_FOUND: { http: 404, ws: 1008 },
  LANE_UNAVAILABLE: { http: 422, ws: 1008 },
  DATABASE_UNAVAILABLE: { http: 503, ws: 1011 },
  VECTOR_STORE_UNAVAILABLE: { http: 503, ws: 1011 },
  TIMEOUT: { http: 504, ws: 1011 },
  PROTOCOL_ERROR: { http: 400, ws: 1008 },
  CHUNK_TOO_LARGE: { http: 413, ws: 1009 },
  TOO_FAST: { http: 429, ws: 4429 },
  IDLE_TIMEOUT: { http: 408, ws: 4408 },
  /** No start message in time after the connection opened. */
  START_TIMEOUT: { http: 408, ws: 4408 },
  /** Audio arrives slower than a live stream can (a trickle holding a slot). */
  TOO_SLOW: { http: 408, ws: 4409 },
  /** Too many listening sessions from one client address. */
  TOO_MANY_SESSIONS: { http: 429, ws: 4430 },
  OVERLOADED: { http: 503, ws: 1013 },
  SHUTTING_DOWN: { http: 503, ws: 1001 },
  INTERNAL: { http: 500, ws: 1011 },
} as const satisfies Record<string, { http: number; ws: number }>;

export type ErrorCode = keyof typeof TABLE;

export class AppError extends Error {
  /** An INTERNAL error whose cause was already logged, and whose message is already public. */
  private readonly logged: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; logged?: boolean },
  ) {
    super(message, options);
    this.name = 'AppError';
    this.logged = options?.logged ?? false;
  }

  /** Whether its message may reach a client as it is. */
  isPublic(): boolean {
    return this.code !== 'INTERNAL' || this.logged;
  }
}

export function isAppError(e: unknown, code?: ErrorCode): e is AppError {
  return e instanceof AppError && (code === undefined || e.code === code);
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(TABLE, s);
}

export function httpStatus(code: ErrorCode): (typeof TABLE)[ErrorCode]['http'] {
  return TABLE[code].http;
}

export function wsCloseCode(code: ErrorCode): number {
  return TABLE[code].ws;
}

/**
 * An error as a client (or the event loop, from a thread) may see it. An INTERNAL failure loses
 * its text, which is logged here in full under a reference (the request's id when the context
 * has one) that the message names.
 */
export function publicError(e: unknown, context: Record<string, unknown> = {}): { code: ErrorCode; message: string } {
  if (e instanceof AppError && e.isPublic()) return { code: e.code, message: e.message };
  const ref = typeof context.requestId === 'string' ? context.requestId : randomUUID();
  const text = (x: unknown) => (x instanceof Error ? (x.stack ?? x.message) : String(x));
  const cause = e instanceof Error && e.cause !== undefined ? { cause: text(e.cause) } : {};
  log.error('internal error', { ...context, ref, error: text(e), ...cause });
  return { code: 'INTERNAL', message: `internal error (ref ${ref})` };
}

/** Any thrown value as an AppError: unknown failures become INTERNAL without leaking details. */
export function toAppError(e: unknown): AppError {
  return e instanceof AppError ? e : new AppError('INTERNAL', 'internal error', { cause: e });
}
