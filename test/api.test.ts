// The REST API through real HTTP: a server on a throwaway data dir with its catalog on the test
// PostgreSQL server, real audio files, real ffmpeg.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { Config } from '../src/base/config.js';
import { startServer, type RunningServer } from '../src/serve.js';
import { CACHE_DIR, CONDITIONS, makeClip, type CorpusTrack, CLIP_DIR } from '../tools/corpus.js';
import { smallCorpusSplit, tempDataDir, TrackInfo } from './fixtures.js';

const KEY = 'test-key-0123456789abcdef';
const run = promisify(execFile);
let server: RunningServer;
let config: Config;
let catalog: CorpusTrack[];
let outside: CorpusTrack[];

const SearchResponse = z.object({
  request_id: z.string().uuid(),
  query_duration_ms: z.number(),
  exact_matches: z.array(
    z.object({
      track: TrackInfo,
      confidence: z.number().min(0).max(1),
      offset_seconds: z.number(),
      aligned_hashes: z.number().int(),
      time_scale: z.number(),
      pitch_shift_cents: z.number().int(),
    }),
  ),
  vibe_matches: z.array(z.unknown()),
  mode_used: z.enum(['exact', 'vibe', 'both']),
  lanes: z.object({ exact: z.string(), vibe: z.string() }),
});
const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

before(async () => {
  ({ catalog, outside } = await smallCorpusSplit());
  config = await tempDataDir('server', { apiKey: KEY, port: 0 });
  server = await startServer(config);
});
after(async () => {
  await server?.close();
});

const url = (p: string) => `${server.url}${p}`;
const auth = { authorization: `Bearer ${KEY}` };
async function upload(files: string[], headers: Record<string, string> = auth) {
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([await readFile(f)]), path.basename(f));
  return fetch(url('/api/v1/tracks'), { method: 'POST', body: form, headers });
}
async function search(file: string | Blob, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append('audio', typeof file === 'string' ? new Blob([await readFile(file)]) : file, typeof file === 'string' ? path.basename(file) : 'clip');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return fetch(url('/api/v1/search'), { method: 'POST', body: form });
}
const expectError = async (res: Response, status: number, code: string, mention?: RegExp) => {
  const body = ErrorBody.parse(await res.json());
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code);
  if (mention) assert.match(body.error.message, mention);
};
const clip = (t: CorpusTrack, start: number, seconds: number, cond = 'clean') => {
  const c = CONDITIONS.find((x) => x.name === cond)!;
  return makeClip(t.file, path.join(CACHE_DIR, 'test-clips', `${t.name}-${start}-${seconds}-${c.name.replace(/\W+/g, '_')}.${c.ext}`), start, seconds, c);
};
/** Everything a failed upload could have left behind. */
const footprint = async () => ({
  tracks: (await server.engine.listTracks()).total,
  index: server.engine.stats(),
  raw: (await server.engine.inventory()).originals.length,
  uploads: readdirSync(path.join(config.dataDir, 'uploads')).length,
});

test('a HOST other machines reach is refused without an API key, unless AUDIO_IDENT_ALLOW_OPEN says so', async () => {
  await assert.rejects(startServer({ ...config, apiKey: undefined, host: '0.0.0.0' }), { code: 'INVALID_ARGUMENT', message: /AUDIO_IDENT_ALLOW_OPEN=1/ });
  const open = await startServer(await tempDataDir('embedded', { host: '0.0.0.0', allowOpen: true, port: 0 }));
  try {
    assert.equal((await fetch(`http://127.0.0.1:${new URL(open.url).port}/livez`)).status, 200);
  } finally {
    await open.close();
  }
});

test('tracks: ingest needs the key; created, then the same file and another copy of the recording are duplicates', async () => {
  const denied = await upload([catalog[0]!.file], {});
  assert.equal(denied.headers.get('www-authenticate'), 'Bearer realm="audio-ident"');
  await expectError(denied, 401, 'UNAUTHORIZED');
  const res = await upload(catalog.slice(0, 4).map((t) => t.file));
  assert.equal(res.status, 201);
  const body = (await res.json()) as { tracks: { status: string; file_name: string; track: z.infer<typeof TrackInfo> }[] };
  assert.deepEqual(
    body.tracks.map((t) => [t.status, t.file_name]),
    catalog.slice(0, 4).map((t) => ['created', t.name]),
  );

  const again = await upload([catalog[1]!.file]);
  assert.equal(again.status, 200);
  const a = (await again.json()) as { tracks: { status: string; duplicate_of: { id: string; reason: string } }[] };
  assert.deepEqual([a.tracks[0]!.status, a.tracks[0]!.duplicate_of.reason, a.tracks[0]!.duplicate_of.id], ['duplicate', 'same_file', body.tracks[1]!.track.id]);

  const copy = path.join(CACHE_DIR, 'test-clips', `${catalog[2]!.name}.api-copy.mp3`);
  if (!existsSync(copy)) await run('ffmpeg', ['-v', 'error', '-y', '-i', catalog[2]!.file, '-c:a', 'libmp3lame', '-b:a', '128k', copy]);
  const dup = (await (await upload([copy])).json()) as { tracks: { status: string; duplicate_of: { id: string; reason: string } }[] };
  assert.deepEqual(
    [dup.tracks[0]!.status, dup.tracks[0]!.duplicate_of.reason, dup.tracks[0]!.duplicate_of.id],
    ['duplicate', 'same_recording', body.tracks[2]!.track.id],
  );
  const reports = (await (await fetch(url('/api/v1/duplicates'))).json()) as { reports: { duplicate_of: string }[] };
  assert.equal(reports.reports[0]?.duplicate_of, body.tracks[2]!.track.id);
});

test('tracks: list with text filter and pages, get one, unknown ids', async () => {
  const all = (await (await fetch(url('/api/v1/tracks'))).json()) as { tracks: z.infer<typeof TrackInfo>[]; total: number };
  assert.equal(all.total, 4);
  all.tracks.forEach((t) => TrackInfo.parse(t));
  const page = (await (await fetch(url('/api/v1/tracks?limit=1&offset=3'))).json()) as { tracks: { id: string }[]; total: number };
  assert.deepEqual([page.tracks.map((t) => t.id), page.total], [[all.tracks[3]!.id], 4]);
  const name = catalog[3]!.name.slice(0, 8);
  const filtered = (await (await fetch(url(`/api/v1/tracks?q=${encodeURIComponent(name)}`))).json()) as { tracks: z.infer<typeof TrackInfo>[] };
  assert.ok(filtered.tracks.some((t) => t.file_name === catalog[3]!.name));
  for (const t of filtered.tracks) {
    assert.ok(
      [t.title, t.artist, t.album, t.file_name].some((v) => v?.toLowerCase().includes(name.toLowerCase())),
      JSON.stringify(t),
    );
  }
  assert.ok(filtered.tracks.length < all.total || all.tracks.every((t) => t.file_name.includes(name)));
  const one = await fetch(url(`/api/v1/tracks/${all.tracks[0]!.id}`));
  assert.equal(TrackInfo.parse(await one.json()).id, all.tracks[0]!.id);
  await expectError(await fetch(url('/api/v1/tracks/00000000-0000-4000-8000-000000000000')), 404, 'TRACK_NOT_FOUND');
  await expectError(await fetch(url('/api/v1/tracks/not-a-uuid')), 400, 'INVALID_ARGUMENT', /^id: /);
  await expectError(await fetch(url('/api/v1/tracks/not-a-uuid'), { method: 'DELETE', headers: auth }), 400, 'INVALID_ARGUMENT', /^id: /);
  await expectError(await fetch(url('/api/v1/tracks?limit=0')), 400, 'INVALID_ARGUMENT', /limit/);
});

test('PATCH a track: title, artist and album corrected with the key; bad bodies are 400, unknown ids 404', async () => {
  const { tracks } = (await (await fetch(url('/api/v1/tracks'))).json()) as { tracks: z.infer<typeof TrackInfo>[] };
  const t = tracks[0]!;
  const patch = (id: string, body: string, headers: Record<string, string> = auth) =>
    fetch(url(`/api/v1/tracks/${id}`), { method: 'PATCH', body, headers: { 'content-type': 'application/json', ...headers } });
  await expectError(await patch(t.id, '{"title":"X"}', {}), 401, 'UNAUTHORIZED');
  const res = await patch(t.id, JSON.stringify({ title: '  Électro ♪  ', album: 'Sound\u0000track' }));
  assert.equal(res.status, 200);
  const changed = TrackInfo.parse(await res.json());
  assert.deepEqual([changed.title, changed.artist, changed.album], ['Électro ♪', t.artist, 'Soundtrack']);
  assert.equal(TrackInfo.parse(await (await fetch(url(`/api/v1/tracks/${t.id}`))).json()).title, 'Électro ♪');
  const cleared = TrackInfo.parse(await (await patch(t.id, '{"album":null}')).json());
  assert.equal(cleared.album, null);
  for (const body of ['{}', '{"title":""}', '{"title":"   "}', '{"genre":"x"}', '{"title":5}', '{"title":', 'null', `{"title":"${'a'.repeat(501)}"}`]) {
    await expectError(await patch(t.id, body), 400, 'INVALID_ARGUMENT', undefined);
  }
  await expectError(await patch('00000000-0000-4000-8000-000000000000', '{"title":"X"}'), 404, 'TRACK_NOT_FOUND');
  await expectError(await patch('nope', '{"title":"X"}'), 400, 'INVALID_ARGUMENT', /^id: /);
});

test('search: the right track and offset, lanes reported; clips over 30 s are cut', async () => {
  const t = catalog[1]!;
  const res = await search(await clip(t, 21, 5, 'Opus 32k WebM'), { mode: 'both', max_results: '3' });
  const body = SearchResponse.parse(await res.json());
  assert.equal(res.status, 200);
  assert.equal(body.exact_matches[0]?.track.file_name, t.name);
  assert.ok(Math.abs(body.exact_matches[0]!.offset_seconds - 21) <= 0.5);
  assert.deepEqual([body.mode_used, body.lanes], ['both', { exact: 'ran', vibe: 'unavailable' }]);
  const long = SearchResponse.parse(await (await search(await clip(catalog[0]!, 10, 40), { mode: 'exact' })).json());
  assert.equal(long.exact_matches[0]?.track.file_name, catalog[0]!.name);
  const none = SearchResponse.parse(await (await search(await clip(outside[0]!, 20, 6), { mode: 'exact' })).json());
  assert.deepEqual(none.exact_matches, []);
});

test('search: every kind of bad input gets its typed error', async () => {
  const wav = await clip(catalog[0]!, 30, 5);
  await expectError(await search(wav, { mode: 'vibe' }), 422, 'LANE_UNAVAILABLE', /vibe/);
  await expectError(await search(wav, { mode: 'loud' }), 400, 'INVALID_ARGUMENT', /mode/);
  await expectError(await search(wav, { max_results: '51' }), 400, 'INVALID_ARGUMENT', /max_results/);
  const noAudio = new FormData();
  noAudio.append('mode', 'exact');
  await expectError(await fetch(url('/api/v1/search'), { method: 'POST', body: noAudio }), 400, 'INVALID_ARGUMENT', /audio/);
  await expectError(await search(new Blob(['just some text, not audio at all '.repeat(20)])), 415, 'UNSUPPORTED_FORMAT');
  await expectError(await search(new Blob([Buffer.concat([Buffer.from('OggS'), Buffer.alloc(20000, 3)])])), 422, 'DECODE_FAILED');
  await expectError(await search(await clip(catalog[0]!, 30, 2)), 422, 'AUDIO_TOO_SHORT');

  // Over 10 MB, sent without a length: refused while the body streams in.
  const boundary = 'x-audio-ident-test';
  let sent = 0;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\n\r\nRIFF`);
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent > 40 * 2 ** 20) return controller.close();
      const chunk = sent === 0 ? head : Buffer.alloc(256 * 1024, 1);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const big = await fetch(url('/api/v1/search'), {
    method: 'POST',
    body,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    duplex: 'half',
  } as RequestInit);
  await expectError(big, 413, 'FILE_TOO_LARGE');
  assert.ok(sent < 40 * 2 ** 20, `the server read the whole ${sent} bytes`);
});

test('a failed upload leaves no file, row or postings behind', async () => {
  const before = await footprint();
  const dir = CLIP_DIR;
  const corrupt = path.join(dir, 'api-corrupt.ogg');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(corrupt, Buffer.concat([Buffer.from('OggS'), Buffer.alloc(50000, 9)]));
  await expectError(await upload([corrupt]), 422, 'DECODE_FAILED', /api-corrupt\.ogg/);
  await expectError(await upload([await clip(catalog[5]!, 10, 2)]), 422, 'AUDIO_TOO_SHORT');
  const text = path.join(dir, 'api-notes.mp3');
  await writeFile(text, 'not audio\n'.repeat(100));
  await expectError(await upload([text]), 415, 'UNSUPPORTED_FORMAT');
  assert.deepEqual(await footprint(), before);
});

test('delete: postings, file and row go; health, metrics and the OpenAPI document', async () => {
  const t = catalog[3]!;
  const { tracks } = (await (await fetch(url('/api/v1/tracks'))).json()) as { tracks: { id: string; file_name: string }[] };
  const victim = tracks.find((x) => x.file_name === t.name)!;
  await expectError(await fetch(url(`/api/v1/tracks/${victim.id}`), { method: 'DELETE' }), 401, 'UNAUTHORIZED');
  const before = await footprint();
  assert.equal((await fetch(url(`/api/v1/tracks/${victim.id}`), { method: 'DELETE', headers: auth })).status, 204);
  const after = await footprint();
  assert.deepEqual([after.tracks, after.raw, after.index.tracks], [before.tracks - 1, before.raw - 1, before.index.tracks - 1]);
  assert.ok(after.index.postings < before.index.postings);
  await expectError(await fetch(url(`/api/v1/tracks/${victim.id}`)), 404, 'TRACK_NOT_FOUND');
  const q = SearchResponse.parse(await (await search(await clip(t, 25, 5), { mode: 'exact' })).json());
  assert.deepEqual(q.exact_matches, []);

  const health = (await (await fetch(url('/health'))).json()) as { status: string; checks: Record<string, string> };
  assert.equal(health.status, 'ok', JSON.stringify(health));
  const metrics = await (await fetch(url('/metrics'))).text();
  assert.match(metrics, /http_requests_total\{method="POST",route="\/api\/v1\/search",status="200"\} \d+/);
  assert.match(metrics, /http_request_duration_seconds_bucket\{method="POST",route="\/api\/v1\/search",le="0.5"\}/);
  assert.match(metrics, /audio_ident_index_bytes \d+/);
  const doc = (await (await fetch(url('/openapi.json'))).json()) as { paths: Record<string, unknown> };
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    '/api/v1/duplicates',
    '/api/v1/search',
    '/api/v1/tracks',
    '/api/v1/tracks/{id}',
    '/health',
    '/livez',
    '/metrics',
    '/readyz',
  ]);
  await expectError(await fetch(url('/nope')), 404, 'NOT_FOUND');
});
