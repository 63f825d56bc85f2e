// The HTTP edge through real HTTP: uploads stream to temporary files (written as they arrive,
// removed on every way out, swept at start-up when their process is gone), bodies the API does
// not take get their 4xx, file names are cleaned, and a stalled decoder times out.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { Config } from '../src/base/config.js';
import { isAlive } from '../src/base/process.js';
import { startServer, type RunningServer } from '../src/serve.js';
import { CACHE_DIR, CONDITIONS, makeClip, type CorpusTrack } from '../tools/corpus.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';

const KEY = 'edge-key-0123456789abcdef';
const MAX_TRACK = 4 * 2 ** 20;
const run = promisify(execFile);
let server: RunningServer;
let config: Config;
let catalog: CorpusTrack[];
/** Files the sweep at start-up must remove, and those it must leave. */
let swept: string[];
let kept: string[];

before(async () => {
  ({ catalog } = await smallCorpusSplit());
  config = await tempDataDir('server', { apiKey: KEY, port: 0, matchThreads: 1, maxTrackUploadBytes: MAX_TRACK });
  const uploads = path.join(config.dataDir, 'uploads');
  await mkdir(uploads, { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  assert.ok(dead && !isAlive(dead));
  swept = [`${dead}.0b2f0a5e-upload`, `${dead}.77c1-upload`, `${process.pid}.left-by-an-earlier-process-with-this-pid`];
  kept = [`${process.pid}.in-progress`, 'notes.txt'];
  for (const f of [...swept, ...kept]) await writeFile(path.join(uploads, f), 'partial upload');
  // A file named for this pid but older than this process: a former process that had the same pid.
  const old = new Date(Date.now() - process.uptime() * 1000 - 3600_000);
  await utimes(path.join(uploads, swept[2]!), old, old);
  server = await startServer(config);
});
after(async () => {
  await server?.close();
});

const url = (p: string) => `${server.url}${p}`;
const auth = { authorization: `Bearer ${KEY}` };
const uploadsDir = () => path.join(config.dataDir, 'uploads');
const ours = () => readdirSync(uploadsDir()).filter((f) => !kept.includes(f));
const until = async (ok: () => boolean, what: string, ms = 10_000) => {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
};
const expectError = async (res: Response | Answer, status: number, code: string, mention?: RegExp) => {
  const body = ('json' in res ? await res.json() : JSON.parse(res.body)) as { error: { code: string; message: string } };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code, JSON.stringify(body));
  if (mention) assert.match(body.error.message, mention);
};

const BOUNDARY = 'edge-test-boundary';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
interface Part {
  name: string;
  /** The whole Content-Disposition value after `form-data; name=...`, e.g. `filename="a.wav"`. */
  params?: string;
  data: Uint8Array | string;
}
const partHead = (p: Omit<Part, 'data'>) =>
  Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"${p.params ? `; ${p.params}` : ''}\r\n\r\n`);
const multipart = (parts: Part[]) =>
  Buffer.concat([...parts.flatMap((p) => [partHead(p), Buffer.from(p.data), Buffer.from('\r\n')]), Buffer.from(`--${BOUNDARY}--\r\n`)]);
const post = (p: string, body: Uint8Array | string, type: string, headers: Record<string, string> = {}) =>
  fetch(url(p), { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': type, ...headers } });

interface Answer {
  status: number;
  body: string;
}
/** A request written by hand, so that a test can pause it, go on or drop it. */
function openRequest(p: string, headers: Record<string, string>) {
  const req = http.request(url(p), { method: 'POST', headers });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
  return { req, answer };
}

const clip = (t: CorpusTrack, start: number, seconds: number, cond = 'clean') => {
  const c = CONDITIONS.find((x) => x.name === cond)!;
  return makeClip(t.file, path.join(CACHE_DIR, 'test-clips', `${t.name}-${start}-${seconds}-${c.name.replace(/\W+/g, '_')}.${c.ext}`), start, seconds, c);
};
/** An excerpt without tags, so that the catalog titles it by its file name. */
async function untagged(t: CorpusTrack, start: number): Promise<Buffer> {
  const out = path.join(CACHE_DIR, 'test-clips', `${t.name}-${start}-20-untagged.wav`);
  const args = ['-v', 'error', '-y', '-ss', String(start), '-t', '20', '-i', t.file, '-map_metadata', '-1', '-fflags', '+bitexact', '-ac', '1', '-ar', '16000'];
  await run('ffmpeg', [...args, '-flags:a', '+bitexact', out]);
  return readFile(out);
}

test('at start-up, uploads left by processes that are gone are removed, others kept', async () => {
  await until(() => swept.every((f) => !readdirSync(uploadsDir()).includes(f)), 'the sweep of uploads left by dead processes');
  for (const f of kept) assert.ok(readdirSync(uploadsDir()).includes(f), `${f} kept`);
});

test('bodies the API does not take: 415 for anything but multipart, 400 for broken multipart or a missing file part', async () => {
  const wav = await readFile(await clip(catalog[0]!, 30, 5));
  for (const [route, headers, field] of [
    ['/api/v1/search', {}, 'audio'],
    ['/api/v1/tracks', auth, 'file'],
  ] as const) {
    const what = (s: string) => `${route}: ${s}`;
    for (const [body, type] of [
      ['{"audio":"x"}', 'application/json'],
      ['just text', 'text/plain'],
      [wav, 'audio/wav'],
      ['audio=x', 'application/x-www-form-urlencoded'],
    ] as const) {
      await expectError(await post(route, body, type, headers), 415, 'UNSUPPORTED_MEDIA_TYPE', /multipart\/form-data/);
    }
    await expectError(await fetch(url(route), { method: 'POST', body: new Uint8Array(wav), headers }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectError(
      await post(route, multipart([{ name: field, params: 'filename="a.wav"', data: wav }]), 'multipart/form-data', headers),
      400,
      'INVALID_ARGUMENT',
      /boundary/,
    );
    const whole = multipart([{ name: field, params: 'filename="a.wav"', data: wav }]);
    await expectError(await post(route, whole.subarray(0, 3000), MULTIPART, headers), 400, 'INVALID_ARGUMENT', /ends early/);
    await expectError(await post(route, 'no parts in here at all', MULTIPART, headers), 400, 'INVALID_ARGUMENT', /ends early/);
    const badHeader = `--${BOUNDARY}\r\nContent-Disposition form-data\r\n\r\nx\r\n--${BOUNDARY}--\r\n`;
    await expectError(await post(route, badHeader, MULTIPART, headers), 400, 'INVALID_ARGUMENT', /part header/);
    await expectError(await post(route, multipart([{ name: 'other', data: 'x' }]), MULTIPART, headers), 400, 'INVALID_ARGUMENT', new RegExp(field));
    // A part without a file name is a plain field, not a file.
    await expectError(await post(route, multipart([{ name: field, data: wav }]), MULTIPART, headers), 400, 'INVALID_ARGUMENT', new RegExp(field));
    assert.deepEqual(ours(), [], what('no upload left behind'));
  }
  const two = multipart([
    { name: 'audio', params: 'filename="a.wav"', data: wav },
    { name: 'audio', params: 'filename="b.wav"', data: wav },
  ]);
  const refused = await post('/api/v1/search', two, MULTIPART);
  // Its body is left unread: the client is told not to send another request on the connection.
  assert.equal(refused.headers.get('connection'), 'close');
  await expectError(refused, 400, 'INVALID_ARGUMENT', /at most 1 file part/);
  assert.deepEqual(ours(), []);
});

test('file names: control characters stripped, path components dropped, long names cut between characters', async () => {
  const cases: { params: string; name: string }[] = [
    { params: "filename*=UTF-8''a%00b%07c%7F%C2%9Fd%09.wav", name: 'abcd.wav' },
    { params: 'filename="../../../etc/evil.wav"', name: 'evil.wav' },
    // At most 255 bytes of UTF-8, an ellipsis included: 1 + 62 x 4 + 3.
    { params: `filename="${'x'.repeat(5000)}.wav"`, name: `${'x'.repeat(252)}…` },
    { params: `filename*=UTF-8''a${encodeURIComponent('😀'.repeat(300))}.wav`, name: `a${'😀'.repeat(62)}…` },
  ];
  for (const [i, c] of cases.entries()) {
    const data = await untagged(catalog[i]!, 20);
    const res = await post('/api/v1/tracks', multipart([{ name: 'file', params: c.params, data }]), MULTIPART, auth);
    const body = (await res.json()) as { tracks: { status: string; file_name: string; track: { title: string; file_name: string } }[] };
    assert.equal(res.status, 201, JSON.stringify(body).slice(0, 500));
    const t = body.tracks[0]!;
    assert.ok(!/\p{Cs}/u.test(t.file_name + t.track.title), 'no lone surrogate');
    assert.deepEqual([t.file_name, t.track.file_name, t.track.title], [c.name, c.name, path.basename(c.name, '.wav')]);
  }
  // A raw control character other than a tab is not valid in a part header.
  const raw = Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a`),
    Buffer.from([0]),
    Buffer.from('b.wav"\r\n\r\nRIFF\r\n'),
  ]);
  await expectError(
    await post('/api/v1/tracks', Buffer.concat([raw, Buffer.from(`--${BOUNDARY}--\r\n`)]), MULTIPART, auth),
    400,
    'INVALID_ARGUMENT',
    /part header/,
  );
  assert.deepEqual(ours(), []);
});

test('an upload is written to disk as it arrives, and a client that drops it mid-way leaves nothing', async () => {
  const data = Buffer.alloc(3 * 2 ** 20, 7);
  const { req, answer } = openRequest('/api/v1/tracks', { ...auth, 'content-type': MULTIPART });
  answer.catch(() => undefined); // the request is dropped below
  req.write(partHead({ name: 'file', params: 'filename="big.wav"' }));
  req.write('RIFF');
  req.write(data);
  // All but the last buffers' worth is on disk while the body is still open.
  const size = () => ours().reduce((n, f) => n + statSync(path.join(uploadsDir(), f)).size, 0);
  await until(() => size() >= data.length - 2 ** 20, 'the upload written to a file while it arrives');
  assert.equal(ours().length, 1);
  req.destroy();
  await until(() => ours().length === 0, 'the partial upload removed');
});

test('413 while the body streams in, the partial file removed; a declared length over the limit is refused unread', async () => {
  let sent = 0;
  const { req, answer } = openRequest('/api/v1/tracks', { ...auth, 'content-type': MULTIPART });
  req.on('error', () => undefined); // the server may close before the last write
  req.write(partHead({ name: 'file', params: 'filename="huge.wav"' }));
  const chunk = Buffer.alloc(256 * 1024, 1);
  const pump = () => {
    while (sent < 10 * MAX_TRACK && !req.destroyed) {
      sent += chunk.length;
      if (!req.write(chunk)) return void req.once('drain', pump);
    }
    req.end();
  };
  pump();
  const res = await answer;
  await expectError(res, 413, 'FILE_TOO_LARGE', /4 MB/);
  assert.ok(sent < 10 * MAX_TRACK, `the server read all ${sent} bytes`);
  req.destroy();
  await until(() => ours().length === 0, 'the partial upload removed');

  const declared = openRequest('/api/v1/search', { 'content-type': MULTIPART, 'content-length': String(11 * 2 ** 20) });
  declared.req.on('error', () => undefined);
  declared.req.write(partHead({ name: 'audio', params: 'filename="a.wav"' }));
  await expectError(await declared.answer, 413, 'FILE_TOO_LARGE', /10 MB/);
  declared.req.destroy();
  assert.deepEqual(ours(), []);
});

test("a clip ffmpeg cannot decode: 422 DECODE_FAILED naming the upload, without ffmpeg's own words", async () => {
  const junk = Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt '), Buffer.alloc(4000, 0xee)]);
  const res = await post('/api/v1/search', multipart([{ name: 'audio', params: 'filename="bad.wav"', data: junk }]), MULTIPART);
  await expectError(res, 422, 'DECODE_FAILED', /^bad\.wav: ffmpeg could not decode it$/);
  assert.deepEqual(ours(), []);
});

test('the OpenAPI document still describes both multipart bodies', async () => {
  type Doc = { paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { properties: Record<string, { format?: string }> } }> } } }> };
  const doc = (await (await fetch(url('/openapi.json'))).json()) as Doc;
  const form = (p: string) => doc.paths[p]!.post.requestBody.content['multipart/form-data']!.schema.properties;
  assert.deepEqual(Object.keys(form('/api/v1/search')).sort(), ['audio', 'max_results', 'mode']);
  assert.equal(form('/api/v1/search').audio!.format, 'binary');
  assert.deepEqual(Object.keys(form('/api/v1/tracks')), ['file']);
});

test('the OpenAPI document: every operation named and tagged, the keyed ones with security, 5xx documented, /metrics in it', async () => {
  type Op = { operationId?: string; tags?: string[]; security?: unknown; responses: Record<string, unknown> };
  const doc = (await (await fetch(url('/openapi.json'))).json()) as { paths: Record<string, Record<string, Op>>; components: { securitySchemes: unknown } };
  assert.deepEqual(doc.components.securitySchemes, { bearer: { type: 'http', scheme: 'bearer' } });
  const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => ({ at: `${m.toUpperCase()} ${p}`, op })));
  const keyed = ops.filter(({ op }) => op.security).map(({ at }) => at);
  assert.deepEqual(keyed.sort(), ['DELETE /api/v1/tracks/{id}', 'PATCH /api/v1/tracks/{id}', 'POST /api/v1/tracks']);
  const ids = ops.map(({ op }) => op.operationId);
  assert.equal(new Set(ids).size, ops.length, 'unique operationIds');
  for (const { at, op } of ops) {
    assert.ok(op.operationId && op.tags?.length, at);
    if (at.includes('/api/v1/')) assert.ok(op.responses['500'] && op.responses['503'], `${at} documents its 5xx`);
    if (op.security) assert.ok(op.responses['401'], `${at} documents 401`);
  }
  assert.ok(doc.paths['/metrics']?.get);
});

test('a decoder that stalls: 504 TIMEOUT, the ffmpeg child killed, the thread free for the next search', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-stall-'));
  const ffmpeg = path.join(dir, 'ffmpeg');
  await writeFile(ffmpeg, `#!/bin/sh\necho $$ > "${dir}/pid"\nexec sleep 60\n`);
  await chmod(ffmpeg, 0o755);
  const stalledConfig = await tempDataDir('server', { port: 0, matchThreads: 1, ffmpegPath: ffmpeg });
  const stalled = await startServer(stalledConfig);
  try {
    const form = new FormData();
    form.append('audio', new Blob([await readFile(await clip(catalog[0]!, 30, 5))]), 'clip.wav');
    form.append('mode', 'exact');
    await expectError(await fetch(`${stalled.url}/api/v1/search`, { method: 'POST', body: form }), 504, 'TIMEOUT', /clip\.wav/);
    const pid = Number(await readFile(path.join(dir, 'pid'), 'utf8'));
    assert.ok(!isAlive(pid), 'the stalled ffmpeg was killed');
    assert.deepEqual(stalled.engine.threadStats().clips, [0]);
    // Opus in WebM is decoded in the thread itself: the same thread answers.
    const webm = new FormData();
    webm.append('audio', new Blob([await readFile(await clip(catalog[0]!, 20, 5, 'Opus 32k WebM'))]), 'clip.webm');
    webm.append('mode', 'exact');
    const res = await fetch(`${stalled.url}/api/v1/search`, { method: 'POST', body: webm });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(readdirSync(path.join(stalledConfig.dataDir, 'uploads')), [], 'no upload left after a timeout or an answer');
  } finally {
    await stalled.close();
  }
});
