// The HTTP API (Hono): catalog management, clip search, health, metrics and the OpenAPI document.
// Handlers ask the Engine. Errors of every kind leave through onError, which maps them with the
// one table in base/errors.ts and keeps INTERNAL failures' text in the log.
import { timingSafeEqual, randomUUID } from 'node:crypto';
import path from 'node:path';
import { OpenAPIHono, createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { Config } from '../base/config.js';
import { AppError, httpStatus, publicError } from '../base/errors.js';
import { log } from '../base/log.js';
import type { Engine } from '../engine/engine.js';
import type { IngestOutcome } from '../engine/ingest.js';
import { Metrics } from './metrics.js';
import * as S from '../api/schemas.js';
import { sweepUploads, withUpload } from './uploads.js';
import { registerProbes } from './health.js';
import { rateLimit } from './rate-limit.js';
import { serveDocs } from './docs.js';
import { serveWebClient } from './web.js';

/** Largest search clip: a browser's recording of the 30 s a search uses, with room to spare. */
export const SEARCH_MAX_BYTES = 10 * 2 ** 20;
/** Files in one track upload: a batch a page or a script sends; it bounds the temporary files of one request. */
const MAX_TRACK_FILES = 100;

const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });
const errors = {
  400: json(S.ErrorBody, 'Bad form fields or query parameters, a malformed multipart body, or no file part (INVALID_ARGUMENT)'),
  413: json(S.ErrorBody, 'Upload too large (FILE_TOO_LARGE)'),
  415: json(
    S.ErrorBody,
    'A body that is not multipart/form-data (UNSUPPORTED_MEDIA_TYPE), or not an accepted audio format, detected from the content (UNSUPPORTED_FORMAT)',
  ),
  422: json(S.ErrorBody, 'Undecodable audio (DECODE_FAILED), clip under 3 s (AUDIO_TOO_SHORT), or lane unavailable'),
};
const authErrors = { 401: json(S.ErrorBody, 'Missing or wrong API key (UNAUTHORIZED, with WWW-Authenticate: Bearer)') };
const serverErrors = {
  500: json(S.ErrorBody, 'Internal error (INTERNAL; the message carries a reference to the server log)'),
  503: json(
    S.ErrorBody,
    'The catalog, the index or the vector store cannot answer (DATABASE_UNAVAILABLE, INDEX_CORRUPT, VECTOR_STORE_UNAVAILABLE), or the server is shutting down or overloaded',
  ),
  504: json(S.ErrorBody, 'Decoding or matching took too long (TIMEOUT)'),
  507: json(S.ErrorBody, 'The data dir cannot be written (STORAGE_ERROR)'),
};
const rateErrors = { 429: json(S.ErrorBody, 'Over the per-address rate limit (TOO_FAST), with Retry-After') };
/** The operations that need the API key, so that generated clients send it. */
const KEYED = [{ bearer: [] }];

export function createApp(engine: Engine, config: Config, metrics = new Metrics()): OpenAPIHono {
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw invalidArgument(result.error);
    },
  });
  const uploads = path.join(config.dataDir, 'uploads');
  sweepUploads(uploads).catch((e: unknown) => log.warn('cannot sweep the uploads left by processes that are gone', { dir: uploads, error: String(e) }));
  /** Documents a route whose multipart body the handler streams itself: the route's own validator would buffer it. */
  const streamed = (route: RouteConfig) => {
    app.openAPIRegistry.registerPath(route);
    return route.path;
  };

  // Browsers' cross-origin calls, for the origins the operator lists (the key is a header, never a cookie).
  if (config.corsOrigins.length > 0) {
    app.use(
      '/api/*',
      cors({
        origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
        allowMethods: ['GET', 'POST', 'PATCH', 'DELETE'],
        allowHeaders: ['Authorization', 'Content-Type'],
        exposeHeaders: ['Retry-After'],
        maxAge: 600,
      }),
    );
  }
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const route = c.req.routePath === '/*' ? 'unmatched' : c.req.routePath;
    const labels = { method: c.req.method, route, status: String(c.res.status) };
    metrics.inc('http_requests_total', 'HTTP requests by route and status', labels);
    metrics.observe('http_request_duration_seconds', 'HTTP request latency', { method: c.req.method, route }, (performance.now() - started) / 1000);
  });
  metrics.gauge('audio_ident_index_bytes', 'Size of the fingerprint index on disk', () => engine.stats().bytes);
  metrics.gauge('audio_ident_index_postings', 'Postings in the fingerprint index', () => engine.stats().postings);
  metrics.gauge('audio_ident_indexed_tracks', 'Tracks in the fingerprint index', () => engine.stats().tracks);

  app.onError((e, c) => {
    // Hono's own 400s (malformed JSON) are the client's mistake, not an internal error.
    const err = publicError(e instanceof HTTPException && e.status === 400 ? new AppError('INVALID_ARGUMENT', e.message) : e, {
      method: c.req.method,
      path: c.req.path,
    });
    if (err.code === 'UNAUTHORIZED') c.header('WWW-Authenticate', 'Bearer realm="audio-ident"');
    return c.json({ error: err }, httpStatus(err.code));
  });
  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  const requireKey: MiddlewareHandler = async (c, next) => {
    if (config.apiKey && !keyMatches(c.req.header('authorization'), config.apiKey)) {
      throw new AppError('UNAUTHORIZED', 'this endpoint needs the API key: Authorization: Bearer KEY');
    }
    await next();
  };

  // --- tracks ---------------------------------------------------------------------------------
  app.post(
    streamed(
      createRoute({
        method: 'post',
        path: '/api/v1/tracks',
        operationId: 'ingestTracks',
        tags: ['tracks'],
        security: KEYED,
        summary: 'Ingest audio files into the catalog',
        description:
          'Each `file` part is hashed, checked for duplicates (same file, or another copy of the same recording), decoded, fingerprinted and indexed. ' +
          '201 when a track was created, 200 when every file was a duplicate.',
        request: { body: { content: { 'multipart/form-data': { schema: S.TrackUploadForm } }, required: true } },
        responses: {
          ...serverErrors,
          200: json(S.TrackUploadResponse, 'Every file was a duplicate'),
          201: json(S.TrackUploadResponse, 'At least one track was created'),
          ...errors,
          ...authErrors,
          ...rateErrors,
        },
      }),
    ),
    requireKey,
    rateLimit(config.rateLimitIngest, 'ingest', config.trustProxy),
    (c) =>
      withUpload(c, { dir: uploads, field: 'file', maxBytes: config.maxTrackUploadBytes, maxFiles: MAX_TRACK_FILES }, async ({ files }) => {
        const summary = await engine.ingest(files);
        const byFile = new Map(summary.outcomes.map((o) => [o.file, o]));
        const outcomes = files.map((f) => byFile.get(f.path)!);
        for (const o of outcomes) metrics.inc('audio_ident_ingest_files_total', 'Files offered for ingest, by outcome', { status: o.status });
        if (outcomes.every((o) => o.status === 'failed')) {
          const first = outcomes[0] as Extract<IngestOutcome, { status: 'failed' }>;
          throw new AppError(first.code, first.message, { logged: true });
        }
        const body = { tracks: outcomes.map((o, i) => uploadResult(files[i]!.name, o)) };
        return c.json(body, outcomes.some((o) => o.status === 'created') ? 201 : 200);
      }),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tracks',
      operationId: 'listTracks',
      tags: ['tracks'],
      summary: 'List catalog tracks, oldest first, optionally filtered by text',
      request: { query: S.TrackListQuery },
      responses: {
        ...serverErrors,
        200: json(S.TrackList, 'A page of tracks'),
        400: json(S.ErrorBody, 'Bad query parameters (INVALID_ARGUMENT)'),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const { tracks, total } = await engine.listTracks(q);
      return c.json({ tracks: tracks.map(S.trackInfo), total, limit: q.limit, offset: q.offset }, 200);
    },
  );

  // Checked, so a malformed id is the client's mistake (400), not a missing track (404).
  const IdParam = z.object({
    id: z
      .string()
      .uuid('must be a track id (a UUID)')
      .openapi({ param: { name: 'id', in: 'path' } }),
  });
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tracks/{id}',
      operationId: 'getTrack',
      tags: ['tracks'],
      summary: 'One catalog track',
      request: { params: IdParam },
      responses: {
        ...serverErrors,
        200: json(S.TrackInfo, 'The track'),
        400: json(S.ErrorBody, 'Malformed id (INVALID_ARGUMENT)'),
        404: json(S.ErrorBody, 'No such track'),
      },
    }),
    async (c) => {
      const t = await engine.getTrack(c.req.valid('param').id);
      if (!t) throw new AppError('TRACK_NOT_FOUND', `no track with id ${c.req.valid('param').id}`);
      return c.json(S.trackInfo(t), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/tracks/{id}',
      operationId: 'deleteTrack',
      tags: ['tracks'],
      security: KEYED,
      summary: 'Delete a track: its postings, stored original and row',
      middleware: [requireKey] as const,
      request: { params: IdParam },
      responses: {
        ...serverErrors,
        204: { description: 'Deleted' },
        400: json(S.ErrorBody, 'Malformed id (INVALID_ARGUMENT)'),
        404: json(S.ErrorBody, 'No such track'),
        ...authErrors,
      },
    }),
    async (c) => {
      await engine.removeTrack(c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/v1/tracks/{id}',
      operationId: 'updateTrack',
      tags: ['tracks'],
      security: KEYED,
      summary: "Correct a track's title, artist or album",
      middleware: [requireKey] as const,
      request: { params: IdParam, body: { content: { 'application/json': { schema: S.TrackPatch } }, required: true } },
      responses: {
        ...serverErrors,
        200: json(S.TrackInfo, 'The track as it is now'),
        400: json(S.ErrorBody, 'Malformed id or body (INVALID_ARGUMENT)'),
        404: json(S.ErrorBody, 'No such track'),
        ...authErrors,
      },
    }),
    async (c) => c.json(S.trackInfo(await engine.updateTrack(c.req.valid('param').id, c.req.valid('json'))), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/duplicates',
      operationId: 'listDuplicates',
      tags: ['tracks'],
      summary: 'Recent duplicate reports of the ingestion pipeline (files not added: another copy of a catalog recording)',
      responses: {
        ...serverErrors,
        200: json(S.DuplicateReports, 'Newest first'),
      },
    }),
    async (c) => c.json({ reports: await engine.duplicateReports() }, 200),
  );

  // --- search ---------------------------------------------------------------------------------
  app.post(
    streamed(
      createRoute({
        method: 'post',
        path: '/api/v1/search',
        operationId: 'search',
        tags: ['search'],
        summary: 'Identify a complete clip (the fallback when live streaming is not possible)',
        request: { body: { content: { 'multipart/form-data': { schema: S.SearchForm } }, required: true } },
        responses: {
          ...serverErrors,
          200: json(S.SearchResponse, 'Matches per lane'),
          ...errors,
          ...rateErrors,
          504: json(S.ErrorBody, 'Decoding the clip, or the one lane asked for, took too long (TIMEOUT)'),
        },
      }),
    ),
    rateLimit(config.rateLimitSearch, 'search', config.trustProxy),
    (c) =>
      withUpload(c, { dir: uploads, field: 'audio', maxBytes: SEARCH_MAX_BYTES, maxFiles: 1 }, async ({ files: [audio], fields }) => {
        const started = performance.now();
        const requestId = randomUUID();
        const { mode, max_results } = parseFields(S.SearchFields, fields);
        const r = await engine.search(audio!.path, { label: audio!.name, mode, maxResults: max_results, requestId });
        metrics.inc('audio_ident_searches_total', 'Clip searches, by whether the exact lane matched', { matched: String(r.exact.length > 0) });
        for (const lane of ['exact', 'vibe'] as const) {
          const status = r.lanes[lane];
          if (status !== 'skipped' && status !== 'unavailable') metrics.inc('audio_ident_search_lanes_total', 'Search lanes run, by outcome', { lane, status });
        }
        return c.json(
          {
            request_id: requestId,
            query_duration_ms: Math.round((performance.now() - started) * 100) / 100,
            exact_matches: r.exact.map(S.exactMatch),
            vibe_matches: r.vibe.map(S.vibeMatch),
            mode_used: mode,
            lanes: r.lanes,
          },
          200,
        );
      }),
  );

  // --- operations -----------------------------------------------------------------------------
  registerProbes(app, engine, config);
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tags: ['operations'],
    summary: 'Prometheus metrics (text exposition format)',
    responses: { 200: { content: { 'text/plain': { schema: z.string() } }, description: 'The metrics' } },
  });
  app.get('/metrics', (c: Context) => c.text(metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4' }));
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'audio-ident',
      version: '0.1.0',
      description: 'Audio identification: catalog management and clip search. Ingestion endpoints need `Authorization: Bearer KEY`.',
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  serveDocs(app);
  serveWebClient(app);
  return app;
}

function uploadResult(fileName: string, o: IngestOutcome): z.infer<typeof S.TrackUploadResponse>['tracks'][number] {
  switch (o.status) {
    case 'created':
      return { file_name: fileName, status: 'created', track: S.trackInfo(o.track) };
    case 'duplicate':
      return {
        file_name: fileName,
        status: 'duplicate',
        track: S.trackInfo(o.track),
        duplicate_of: { id: o.track.id, reason: o.reason, confidence: Math.round(o.confidence * 1000) / 1000 },
      };
    case 'failed':
      return { file_name: fileName, status: 'failed', error: { code: o.code, message: o.message } };
  }
}

function invalidArgument(error: z.ZodError): AppError {
  const issue = error.issues[0];
  const field = issue?.path.join('.') || 'request';
  return new AppError('INVALID_ARGUMENT', `${field}: ${issue?.message ?? 'invalid'}`);
}

/** A streamed form's fields, validated as a route's own validator would. */
function parseFields<T extends z.ZodTypeAny>(schema: T, fields: Record<string, string>): z.infer<T> {
  const result = schema.safeParse(fields);
  if (!result.success) throw invalidArgument(result.error);
  return result.data;
}

function keyMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}
