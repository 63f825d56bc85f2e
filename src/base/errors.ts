// Typed errors with stable codes, and the one table that maps each code to an HTTP status and a
// WebSocket close code. The CLI prints code and message.

const TABLE = {
  FILE_NOT_FOUND: { http: 404, ws: 1008 },
  UNSUPPORTED_FORMAT: { http: 415, ws: 1003 },
  DECODE_FAILED: { http: 422, ws: 1007 },
  AUDIO_TOO_SHORT: { http: 422, ws: 1007 },
  FILE_TOO_LARGE: { http: 413, ws: 1009 },
  TRACK_NOT_FOUND: { http: 404, ws: 1008 },
  INDEX_MISMATCH: { http: 500, ws: 1011 },
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
  OVERLOADED: { http: 503, ws: 1013 },
  SHUTTING_DOWN: { http: 503, ws: 1001 },
  INTERNAL: { http: 500, ws: 1011 },
} as const satisfies Record<string, { http: number; ws: number }>;

export type ErrorCode = keyof typeof TABLE;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
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

/** Any thrown value as an AppError: unknown failures become INTERNAL without leaking details. */
export function toAppError(e: unknown): AppError {
  return e instanceof AppError ? e : new AppError('INTERNAL', 'internal error', { cause: e });
}
