// The error-code table and what clients may see of an error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, httpStatus, isAppError, isErrorCode, publicError, toAppError, wsCloseCode, type ErrorCode } from '../../src/base/errors.js';

// Every code, checked by the compiler both ways: a code added to the table fails to compile here.
const CODES: Record<ErrorCode, null> = {
  FILE_NOT_FOUND: null,
  UNSUPPORTED_FORMAT: null,
  UNSUPPORTED_MEDIA_TYPE: null,
  DECODE_FAILED: null,
  AUDIO_TOO_SHORT: null,
  FILE_TOO_LARGE: null,
  TRACK_NOT_FOUND: null,
  DUPLICATE_IN_PROGRESS: null,
  DUPLICATE_IN_BATCH: null,
  INDEX_MISMATCH: null,
  INDEX_CORRUPT: null,
  STORAGE_ERROR: null,
  INVALID_ARGUMENT: null,
  UNAUTHORIZED: null,
  NOT_FOUND: null,
  LANE_UNAVAILABLE: null,
  DATABASE_UNAVAILABLE: null,
  VECTOR_STORE_UNAVAILABLE: null,
  TIMEOUT: null,
  PROTOCOL_ERROR: null,
  CHUNK_TOO_LARGE: null,
  TOO_FAST: null,
  IDLE_TIMEOUT: null,
  START_TIMEOUT: null,
  TOO_SLOW: null,
  TOO_MANY_SESSIONS: null,
  OVERLOADED: null,
  SHUTTING_DOWN: null,
  INTERNAL: null,
};
const ALL = Object.keys(CODES) as ErrorCode[];

/** Runs fn with stderr (where log lines go) captured. */
function captureStderr<T>(fn: () => T): { result: T; text: string } {
  const write = process.stderr.write;
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { result: fn(), text };
  } finally {
    process.stderr.write = write;
  }
}

describe('error codes', () => {
  it('map every code to an HTTP error status', () => {
    for (const code of ALL) {
      const s = httpStatus(code);
      assert.ok(s >= 400 && s <= 599, `${code}: ${s}`);
    }
    assert.equal(httpStatus('INTERNAL'), 500);
    assert.equal(httpStatus('INVALID_ARGUMENT'), 400);
    assert.equal(httpStatus('TRACK_NOT_FOUND'), 404);
  });

  it('map every code to a WebSocket close code an endpoint may send', () => {
    // 1004-1006 and 1015 are reserved (never sent in a close frame); 1016-2999 are unassigned.
    const sendable = (c: number) => (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    for (const code of ALL) assert.ok(sendable(wsCloseCode(code)), `${code}: ${wsCloseCode(code)}`);
    assert.equal(wsCloseCode('INTERNAL'), 1011);
    assert.equal(wsCloseCode('OVERLOADED'), 1013);
  });

  it('isErrorCode knows the table and nothing inherited', () => {
    for (const code of ALL) assert.ok(isErrorCode(code));
    for (const s of ['', 'internal', 'NOPE', 'toString', '__proto__', 'constructor']) assert.equal(isErrorCode(s), false, s);
  });
});

describe('publicError', () => {
  it('passes an AppError through as it is', () => {
    assert.deepEqual(publicError(new AppError('TRACK_NOT_FOUND', 'no track 12')), { code: 'TRACK_NOT_FOUND', message: 'no track 12' });
  });

  it('hides an unknown error behind a reference, logging its text under it', () => {
    const secret = 'password=hunter2 at /srv/secret/path';
    const { result, text } = captureStderr(() => publicError(new Error(secret), { requestId: 'req-123' }));
    assert.deepEqual(result, { code: 'INTERNAL', message: 'internal error (ref req-123)' });
    const line = JSON.parse(text.trim());
    assert.equal(line.level, 'error');
    assert.equal(line.ref, 'req-123');
    assert.ok(line.error.includes(secret));
  });

  it('makes up a reference when the context has no request id', () => {
    const { result } = captureStderr(() => publicError('a thrown string', { requestId: 42 }));
    assert.equal(result.code, 'INTERNAL');
    assert.match(result.message, /^internal error \(ref [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)$/);
    assert.ok(!result.message.includes('a thrown string'));
  });

  it("hides an INTERNAL AppError's text unless it was already logged", () => {
    const hidden = captureStderr(() => publicError(new AppError('INTERNAL', 'db row 7 corrupt'), { requestId: 'r1' })).result;
    assert.deepEqual(hidden, { code: 'INTERNAL', message: 'internal error (ref r1)' });
    const shown = publicError(new AppError('INTERNAL', 'internal error (ref r0)', { logged: true }));
    assert.deepEqual(shown, { code: 'INTERNAL', message: 'internal error (ref r0)' });
  });
});

describe('toAppError and isAppError', () => {
  it('keeps an AppError and wraps anything else as INTERNAL, its cause kept', () => {
    const app = new AppError('TIMEOUT', 'too slow');
    assert.equal(toAppError(app), app);
    const cause = new Error('disk on fire');
    const wrapped = toAppError(cause);
    assert.equal(wrapped.code, 'INTERNAL');
    assert.equal(wrapped.message, 'internal error');
    assert.equal(wrapped.cause, cause);
    assert.equal(wrapped.isPublic(), false);
  });

  it('isAppError checks the code when given one', () => {
    const e = new AppError('TIMEOUT', 'x');
    assert.ok(isAppError(e));
    assert.ok(isAppError(e, 'TIMEOUT'));
    assert.equal(isAppError(e, 'INTERNAL'), false);
    assert.equal(isAppError(new Error('x')), false);
  });
});
