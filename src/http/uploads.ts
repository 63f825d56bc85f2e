// Multipart uploads streamed to temporary files under DATA/uploads: a body is never held in
// memory, its size limits hold while it arrives, and no way out of a request leaves a file behind.
// The files are named `<pid>.<uuid>`, so that a sweep at start-up can tell those whose process is gone.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import busboy from 'busboy';
import type { Context } from 'hono';
import { AppError } from '../base/errors.js';
import { log } from '../base/log.js';
import { isAlive } from '../base/process.js';
import { utf8Prefix } from '../base/text.js';

/** Room for the multipart envelope and the small form fields around the files. */
const FORM_SLACK = 64 * 1024;
/** The forms' other fields are short words and numbers; busboy keeps each in memory. */
const FIELD_LIMITS = { fields: 16, fieldSize: 1024 };
/** Longest file name kept, in bytes of UTF-8: what most file systems allow. */
const MAX_NAME_BYTES = 255;

export interface UploadedFile {
  /** The temporary file. */
  path: string;
  /** The client's name for it, cleaned (cleanFileName). */
  name: string;
}

export interface Upload {
  /** At least one. */
  files: UploadedFile[];
  /** The other fields by name; of a repeated one, the last. */
  fields: Record<string, string>;
}

export interface UploadSpec {
  /** Where the temporary files go. */
  dir: string;
  /** The form field whose parts are the files. */
  field: string;
  /** The largest file; the body may hold FORM_SLACK more. */
  maxBytes: number;
  maxFiles: number;
}

/** Receives a request's multipart upload, hands it to `use` and removes its files, however `use` ends. */
export async function withUpload<T>(c: Context, spec: UploadSpec, use: (u: Upload) => Promise<T>): Promise<T> {
  const upload = await receive(c.req.raw, spec).catch((e: unknown) => {
    // A refused body may be left partly unread: the client must not send another request on this connection.
    c.header('Connection', 'close');
    throw e;
  });
  try {
    return await use(upload);
  } finally {
    await removeFiles(upload.files);
  }
}

async function receive(req: Request, spec: UploadSpec): Promise<Upload> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^multipart\/form-data\s*(;|$)/i.test(type)) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `send multipart/form-data with the file in a "${spec.field}" part`);
  }
  const tooLarge = (what = 'upload') => new AppError('FILE_TOO_LARGE', `${what}: over ${Math.round(spec.maxBytes / 2 ** 20)} MB`);
  if (Number(req.headers.get('content-length')) > spec.maxBytes + FORM_SLACK) throw tooLarge();
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': type },
      defParamCharset: 'utf8',
      limits: { ...FIELD_LIMITS, files: spec.maxFiles, fileSize: spec.maxBytes },
    });
  } catch {
    throw new AppError('INVALID_ARGUMENT', 'multipart/form-data needs a boundary parameter');
  }
  await mkdir(spec.dir, { recursive: true }).catch((e: unknown) => {
    throw storageError(spec.dir, e);
  });

  const files: UploadedFile[] = [];
  const fields = new Map<string, string>();
  const writes: Promise<void>[] = [];
  const abort = new AbortController();
  let failure: unknown;
  // The first failure is the answer; aborting stops reading the body and every file's write.
  const fail = (e: unknown) => {
    failure ??= e;
    abort.abort();
  };
  parser.on('file', (name, stream, info) => {
    if (name !== spec.field || failure !== undefined) {
      // Drained, and its error (a body cut short) is the parser's to report, not the process's.
      stream.on('error', () => undefined);
      return void stream.resume();
    }
    const file = { path: path.join(spec.dir, `${process.pid}.${randomUUID()}`), name: cleanFileName(info.filename) };
    files.push(file);
    // Not at once: busboy still sets the stream's `truncated` after emitting 'limit'.
    stream.once('limit', () => queueMicrotask(() => fail(tooLarge(file.name))));
    const write = pipeline(stream, createWriteStream(file.path), { signal: abort.signal });
    writes.push(write.catch((e: unknown) => fail((e as NodeJS.ErrnoException).syscall ? storageError(spec.dir, e) : e)));
  });
  // Errors can come after the pipeline gave up on the parser (an abort): they are answered already.
  parser.on('error', fail);
  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) fail(new AppError('INVALID_ARGUMENT', `${name}: longer than ${FIELD_LIMITS.fieldSize} bytes`));
    fields.set(name, value);
  });
  parser.on('filesLimit', () => fail(new AppError('INVALID_ARGUMENT', `at most ${spec.maxFiles} file part${spec.maxFiles === 1 ? '' : 's'}`)));
  parser.on('fieldsLimit', () => fail(new AppError('INVALID_ARGUMENT', `at most ${FIELD_LIMITS.fields} form fields`)));
  const counted = countBytes(spec.maxBytes + FORM_SLACK, () => tooLarge());
  const body = req.body ? Readable.fromWeb(req.body as NodeReadableStream<Uint8Array>) : Readable.from([]);
  await pipeline(body, counted, parser, { signal: abort.signal }).catch(fail);
  // Every write has settled, so no file appears after the removal below.
  await Promise.all(writes);
  if (failure === undefined && files.length === 0) failure = new AppError('INVALID_ARGUMENT', `${spec.field}: a file part is required`);
  if (failure !== undefined) {
    await removeFiles(files);
    throw formError(failure);
  }
  return { files, fields: Object.fromEntries(fields) };
}

/**
 * A client's file name as the catalog keeps it. busboy has already taken its last path
 * component; control characters go (PostgreSQL refuses a NUL), and a long name is cut between
 * characters, never inside a surrogate pair, ending in an ellipsis.
 */
export function cleanFileName(name: string | undefined): string {
  return utf8Prefix((name ?? '').replace(/\p{Cc}/gu, '').trim(), MAX_NAME_BYTES) || 'upload';
}

/**
 * Removes the temporary files of processes that are gone; a file named for this process's pid
 * but older than it was left by an earlier process that had the same pid (a restarted container).
 */
export async function sweepUploads(dir: string): Promise<number> {
  const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  const started = Date.now() - process.uptime() * 1000;
  let removed = 0;
  for (const name of names) {
    const pid = /^(\d+)\./.exec(name)?.[1];
    if (pid === undefined) continue;
    const file = path.join(dir, name);
    const gone =
      Number(pid) === process.pid
        ? await stat(file).then(
            (s) => s.mtimeMs < started,
            () => false,
          )
        : !isAlive(Number(pid));
    if (!gone) continue;
    await rm(file, { force: true });
    removed++;
  }
  if (removed) log.info('removed uploads left by processes that are gone', { dir, removed });
  return removed;
}

function removeFiles(files: UploadedFile[]): Promise<unknown> {
  return Promise.all(files.map((f) => rm(f.path, { force: true })));
}

/** Passes the body on, failing with `over()` once more than `max` bytes came. */
function countBytes(max: number, over: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      done(seen > max ? over() : null, chunk);
    },
  });
}

function storageError(dir: string, e: unknown): AppError {
  log.error('cannot write an upload', { dir, error: String(e) });
  return new AppError('STORAGE_ERROR', `cannot write the upload under ${dir}`, { cause: e });
}

/** A failure as the client sees it: busboy's and the stream's own words stay out. */
function formError(e: unknown): unknown {
  if (e instanceof AppError || !(e instanceof Error)) return e;
  if (/part header/i.test(e.message)) return new AppError('INVALID_ARGUMENT', 'malformed multipart body: a part header is not valid', { cause: e });
  return new AppError('INVALID_ARGUMENT', 'malformed multipart body: it ends early or was cut off', { cause: e });
}
