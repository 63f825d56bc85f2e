// Typed errors with stable codes. The HTTP and WebSocket layers map codes to statuses in one
// table (added with the server); the CLI prints code and message.

export type ErrorCode =
  | 'FILE_NOT_FOUND'
  | 'UNSUPPORTED_FORMAT'
  | 'DECODE_FAILED'
  | 'AUDIO_TOO_SHORT'
  | 'TRACK_NOT_FOUND'
  | 'INDEX_MISMATCH'
  | 'INVALID_ARGUMENT';

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
