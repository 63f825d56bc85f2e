// The web client in a real browser: Debian's Chromium driven by playwright-core, its fake
// microphone fed from corpus excerpts, against a real server with a small catalog. Screenshots
// of each state go outside the checkout and are named in the output.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Hono } from 'hono';
import WebSocket from 'ws';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../src/serve.js';
import { serveWebClient, WEB_DIR } from '../src/http/web.js';
import { type CorpusTrack, CLIP_DIR } from '../tools/corpus.js';
import { CHROMIUM, smallCorpusSplit, tempDataDir } from './fixtures.js';

const run = promisify(execFile);
const KEY = 'web-test-key-0123456789';
const ARTIFACTS = process.env.AUDIO_IDENT_CACHE_DIR
  ? path.join(process.env.AUDIO_IDENT_CACHE_DIR, 'artifacts', 'web')
  : path.join(os.tmpdir(), 'audio-ident-artifacts', 'web');

let server: RunningServer;
let catalog: CorpusTrack[];
let outside: CorpusTrack[];
const titles = new Map<string, { id: string; title: string; duration_seconds: number }>();

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/setup.sh --tests installs Debian's chromium`);
  assert.ok(existsSync(path.join(WEB_DIR, 'index.html')), 'the web client is not built: npm run build:web');
  ({ catalog, outside } = await smallCorpusSplit());
  server = await startServer(await tempDataDir('server', { port: 0, apiKey: KEY }));
  const s = await server.engine.ingest(catalog.slice(0, 4).map((t) => t.file));
  assert.equal(s.created, 4);
  const list = (await (await fetch(`${server.url}/api/v1/tracks?limit=200`)).json()) as {
    tracks: { id: string; title: string; file_name: string; duration_seconds: number }[];
  };
  for (const t of list.tracks) titles.set(t.file_name, t);
  await mkdir(ARTIFACTS, { recursive: true });
  console.log(`# screenshots in ${ARTIFACTS}`);
});
after(async () => {
  await server?.close();
});

/** A mono 48 kHz 16-bit WAV excerpt, the form Chromium's fake capture device plays best (looping). */
async function wav(t: CorpusTrack, start: number, seconds: number): Promise<string> {
  const out = path.join(CLIP_DIR, `${t.name}-${start}-${seconds}.mic48k.wav`);
  if (existsSync(out)) return out;
  await mkdir(CLIP_DIR, { recursive: true });
  const tmp = `${out}.part.${process.pid}.wav`;
  await run('ffmpeg', ['-v', 'error', '-y', '-ss', String(start), '-t', String(seconds), '-i', t.file, '-ac', '1', '-ar', '48000', '-c:a', 'pcm_s16le', tmp]);
  await run('mv', [tmp, out]);
  return out;
}

/**
 * A fresh headless Chromium with an empty profile. `mic`: a fake microphone playing that file,
 * which the page may use unless `deny` (then the permission request is refused); no `mic`: the
 * machine has no microphone.
 */
async function browser(o: { mic?: string; deny?: boolean; phone?: boolean }): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-chromium-'));
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  if (o.mic) args.push('--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${o.mic}`);
  if (o.mic && !o.deny) args.push('--use-fake-ui-for-media-stream');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: o.phone ? { width: 390, height: 844 } : { width: 1200, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
  return {
    context,
    page,
    close: async () => {
      await context.close();
      // Helper processes may still be flushing into the profile for a moment after the close.
      await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

async function shot(page: Page, name: string): Promise<void> {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot ${file}`);
}

/** Records every state the answer panel passes through, with its title, as the page changes it. */
async function watchAnswer(page: Page): Promise<void> {
  await page.evaluate(() => {
    const answer = document.getElementById('answer')!;
    const seen: string[] = [];
    (window as unknown as { answerStates: string[] }).answerStates = seen;
    new MutationObserver(() => {
      const s = `${answer.dataset.status} ${answer.querySelector('.title')?.textContent ?? ''}`.trim();
      if (seen.at(-1) !== s) seen.push(s);
    }).observe(answer, { attributes: true, childList: true, subtree: true });
  });
}
const answerStates = (page: Page) => page.evaluate(() => (window as unknown as { answerStates: string[] }).answerStates);

test('the server serves the built pages with their types and caching, and the API beside them', async () => {
  const page = await fetch(`${server.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const html = await page.text();
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(script, 'the page loads a hashed script');
  const asset = await fetch(`${server.url}${script}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('content-type')!, /^text\/javascript/);
  assert.match(asset.headers.get('cache-control')!, /immutable/);
  assert.equal((await fetch(`${server.url}/catalog`)).status, 200);
  assert.equal((await fetch(`${server.url}/assets/missing.js`)).status, 404);
  assert.equal((await fetch(`${server.url}/assets/..%2Fweb.test.js`)).status, 404);
  for (const p of ['/health', '/openapi.json', '/api/v1/tracks'])
    assert.match((await fetch(`${server.url}${p}`)).headers.get('content-type')!, /application\/json/, p);
  assert.match(await (await fetch(`${server.url}/metrics`)).text(), /http_requests_total/);
});

test('/docs: the API reference renders in the browser from this server alone, every operation listed', { timeout: 60_000 }, async () => {
  const b = await browser({});
  try {
    const elsewhere: string[] = [];
    const violations: string[] = [];
    b.page.on('request', (r) => {
      if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) elsewhere.push(r.url());
    });
    b.page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    const res = await b.page.goto(`${server.url}/docs`);
    assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await b.page.locator('.swagger-ui .info .title').filter({ hasText: 'audio-ident' }).waitFor({ timeout: 20_000 });
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, object> };
    const operations = Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0);
    await b.page
      .locator('.opblock')
      .nth(operations - 1)
      .waitFor();
    assert.equal(await b.page.locator('.opblock').count(), operations);
    assert.ok(await b.page.locator('button.authorize').isVisible(), 'the bearer scheme offers Authorize');
    await shot(b.page, 'docs');
    assert.deepEqual(elsewhere, [], 'no CDN or other host');
    assert.deepEqual(violations, []);
  } finally {
    await b.close();
  }
});

test('without a build, the pages answer 503 saying how to build them', async () => {
  const app = new Hono();
  app.get('/api/ping', (c) => c.json({ ok: true }));
  serveWebClient(app, path.join(os.tmpdir(), 'audio-ident-no-web-build'));
  const res = await app.request('/');
  assert.equal(res.status, 503);
  assert.match(await res.text(), /scripts\/setup\.sh/);
  assert.equal((await app.request('/catalog')).status, 503);
  assert.equal((await app.request('/api/ping')).status, 200);
});

test('listening: the fake microphone plays a catalog track; provisional, then final with the right title and a moving position', {
  timeout: 120_000,
}, async () => {
  const t = catalog[1]!;
  const expected = titles.get(t.name)!;
  const b = await browser({ mic: await wav(t, 40, 25), phone: true });
  try {
    const { page } = b;
    await page.goto(server.url);
    await watchAnswer(page);
    await shot(page, '1-listen-idle');
    // Keyboard only: the Listen button takes focus and Enter.
    await page.getByRole('button', { name: 'Listen' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#hearing').waitFor({ state: 'visible', timeout: 15_000 });
    await page.locator('#answer[data-status="provisional"], #answer[data-status="final"]').waitFor({ timeout: 30_000 });
    await shot(page, '2-listen-first-answer');
    await page.locator('#answer[data-status="final"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#answer .title').textContent(), expected.title);
    const states = await answerStates(page);
    const firsts = states.filter((s) => s.startsWith('provisional') || s.startsWith('final'));
    assert.match(firsts[0]!, /^provisional /, `states: ${states.join(' | ')}`);
    assert.equal(firsts.at(-1), `final ${expected.title}`);
    assert.ok(
      states.every((s) => !s.startsWith('final') || s === `final ${expected.title}`),
      `a wrong final: ${states.join(' | ')}`,
    );
    // The level meter hears the music.
    assert.ok((await page.locator('#level').evaluate((m: HTMLMeterElement) => m.value)) > 0, 'the meter shows a level');
    // The position moves along in real time, against the track's length.
    const timer = page.locator('#answer-detail [role="timer"]');
    const first = (await timer.textContent())!;
    await page.waitForTimeout(2_100);
    const later = (await timer.textContent())!;
    const secs = (s: string) => s.split(' / ').map((x) => Number(x.split(':')[0]) * 60 + Number(x.split(':')[1]));
    assert.equal(secs(first)[1], Math.floor(expected.duration_seconds));
    assert.ok(secs(later)[0]! - secs(first)[0]! >= 1, `${first} -> ${later}`);
    assert.ok(secs(later)[0]! >= 40 && secs(later)[0]! <= 70, `position ${later} for an excerpt from 0:40`);
    assert.match((await page.locator('#answer-detail dd').first().textContent())!, /^\d+%$/);
    // With the vibe lane off the panel says so; with it on, it lists matches.
    await page.locator('#vibe[data-status="off"], #vibe[data-status="final"], #vibe[data-status="provisional"]').waitFor({ timeout: 15_000 });
    if ((await page.locator('#vibe').getAttribute('data-status')) === 'off') assert.match((await page.locator('#vibe').textContent())!, /off on this server/);
    await shot(page, '3-listen-final');
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByText('Stopped listening.').waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#answer .title').textContent(), expected.title);
  } finally {
    await b.close();
  }
});

test('keep listening: a running list of what played when, as the music changes track', { timeout: 120_000 }, async () => {
  const [a, b2] = [catalog[0]!, catalog[3]!];
  const mic = path.join(CLIP_DIR, `${a.name}-30+${b2.name}-20.mic48k.wav`);
  if (!existsSync(mic)) {
    const part = `${mic}.part.${process.pid}.wav`;
    const mono = 'aformat=sample_rates=48000:channel_layouts=mono';
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-ss',
      '30',
      '-t',
      '14',
      '-i',
      a.file,
      '-ss',
      '20',
      '-t',
      '14',
      '-i',
      b2.file,
      '-filter_complex',
      `[0:a]${mono}[a];[1:a]${mono}[b];[a][b]concat=n=2:v=0:a=1`,
      '-c:a',
      'pcm_s16le',
      part,
    ]);
    await run('mv', [part, mic]);
  }
  const b = await browser({ mic });
  try {
    const { page } = b;
    await page.goto(server.url);
    await page.getByRole('switch', { name: 'Keep listening' }).check();
    await page.getByRole('button', { name: 'Listen' }).click();
    await page.locator('#history li').nth(1).waitFor({ timeout: 60_000 });
    const items = await page.locator('#history li').allTextContents();
    assert.match(items[0]!, new RegExp(`^0:0\\d ${titles.get(a.name)!.title}`), items.join(' | '));
    assert.match(items[1]!, new RegExp(`^0:(0[89]|1\\d) ${titles.get(b2.name)!.title}`), items.join(' | '));
    assert.equal(await page.locator('#answer .title').textContent(), titles.get(b2.name)!.title);
    await shot(page, '3b-keep-listening');
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByText('Stopped listening.').waitFor({ timeout: 15_000 });
  } finally {
    await b.close();
  }
});

test('listening: a recording that is not in the catalog ends in "No match" with a Try again', { timeout: 120_000 }, async () => {
  const b = await browser({ mic: await wav(outside[0]!, 20, 20) });
  try {
    const { page } = b;
    await page.goto(server.url);
    await watchAnswer(page);
    await page.getByRole('button', { name: 'Listen' }).click();
    await page.locator('#hearing').waitFor({ state: 'visible', timeout: 15_000 });
    await page.waitForTimeout(8_000);
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('#answer[data-status="no-match"]').waitFor({ timeout: 15_000 });
    assert.match((await page.locator('#answer').textContent())!, /No match.*Nothing in the catalog matches/);
    assert.ok(!(await answerStates(page)).some((s) => s.startsWith('final')));
    await page.getByRole('button', { name: 'Try again' }).waitFor();
    await shot(page, '4-listen-no-match');
  } finally {
    await b.close();
  }
});

test('microphone refused: the page says so and identifies an uploaded clip instead; upload errors read as sentences', { timeout: 120_000 }, async () => {
  const t = catalog[2]!;
  const expected = titles.get(t.name)!;
  const b = await browser({ mic: await wav(t, 60, 8), deny: true });
  try {
    const { page } = b;
    await page.goto(server.url);
    await page.getByRole('button', { name: 'Listen' }).click();
    await page.locator('#fallback').waitFor({ state: 'visible', timeout: 15_000 });
    assert.match((await page.locator('#problem').textContent())!, /Permission to use the microphone was refused/);
    await shot(page, '5-fallback-offered');

    await page.locator('#upload').setInputFiles(await wav(t, 60, 8));
    await page.locator('#answer[data-status="final"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#answer .title').textContent(), expected.title);
    assert.match((await page.locator('#answer-detail').textContent())!, /Clip starts at1:0\d \/ /);
    await shot(page, '6-fallback-identified');

    const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-web-'));
    const notAudio = path.join(dir, 'notes.txt');
    await writeFile(notAudio, 'these are not the sounds you are looking for\n'.repeat(50));
    await page.locator('#upload').setInputFiles(notAudio);
    await page.locator('#problem').filter({ hasText: 'not in an audio format' }).waitFor({ timeout: 15_000 });
    const short = path.join(dir, 'short.wav');
    await run('sox', ['-n', '-r', '16000', '-c', '1', short, 'synth', '1', 'sine', '440']);
    await page.locator('#upload').setInputFiles(short);
    await page.locator('#problem').filter({ hasText: 'too short' }).waitFor({ timeout: 15_000 });
    assert.doesNotMatch((await page.locator('#problem').textContent())!, /AUDIO_TOO_SHORT|422/);
    await shot(page, '7-fallback-error');
    await rm(dir, { recursive: true, force: true });
  } finally {
    await b.close();
  }
});

test('a busy server and an unreachable one are told in sentences; unreachable offers the upload', { timeout: 120_000 }, async () => {
  const busy = await startServer(await tempDataDir('server', { port: 0, maxSessions: 1 }));
  const b = await browser({ mic: await wav(catalog[1]!, 40, 25) });
  let holder: WebSocket | undefined;
  try {
    const { page } = b;
    await page.goto(busy.url);
    // Another listener holds the only session.
    holder = new WebSocket(`${busy.url.replace('http', 'ws')}/api/v1/listen`);
    await new Promise((resolve, reject) => holder!.once('open', resolve).once('error', reject));
    await page.getByRole('button', { name: 'Listen' }).click();
    await page.locator('#problem').filter({ hasText: 'The server is busy with other listeners' }).waitFor({ timeout: 15_000 });
    assert.doesNotMatch((await page.locator('#problem').textContent())!, /1013/);
    await shot(page, '5a-listen-busy');
    holder.close();
    await busy.close();
    await page.getByRole('button', { name: 'Listen' }).click();
    await page.locator('#fallback').waitFor({ state: 'visible', timeout: 15_000 });
    assert.match((await page.locator('#problem').textContent())!, /could not be reached/);
  } finally {
    holder?.close();
    await b.close();
    await busy.close();
  }
});

test('no microphone at all: the page says so and offers the upload', { timeout: 60_000 }, async () => {
  const b = await browser({});
  try {
    await b.page.goto(server.url);
    await b.page.getByRole('button', { name: 'Listen' }).click();
    await b.page.locator('#fallback').waitFor({ state: 'visible', timeout: 15_000 });
    assert.match((await b.page.locator('#problem').textContent())!, /No microphone was found/);
    assert.equal(await b.page.getByRole('button', { name: 'Listen' }).isEnabled(), true);
  } finally {
    await b.close();
  }
});

test('catalog page: search, upload several files with the API key asked for, see the duplicate, delete with a confirmation', { timeout: 180_000 }, async () => {
  const fresh = catalog[4]!;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-web-'));
  // Another encoding of a catalog track: the pipeline reports it as the same recording.
  const copy = path.join(dir, `copy-of-${path.parse(catalog[0]!.name).name}.mp3`);
  await run('ffmpeg', ['-v', 'error', '-y', '-i', catalog[0]!.file, '-c:a', 'libmp3lame', '-b:a', '128k', copy]);
  const b = await browser({});
  try {
    const { page } = b;
    await page.goto(`${server.url}/catalog`);
    await page.locator('#count').filter({ hasText: 'of 4' }).waitFor({ timeout: 15_000 });
    const one = titles.get(catalog[3]!.name)!.title;
    await page.getByLabel('Search title, artist, album or file name').fill(one);
    await page
      .locator('#count')
      .filter({ hasText: `matching “${one}”` })
      .waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#tracks tbody tr').count(), 1);
    await page.getByLabel('Search title, artist, album or file name').fill('');
    await page.locator('#count').filter({ hasText: 'Tracks 1–4 of 4.' }).waitFor({ timeout: 15_000 });

    await page.locator('#files').setInputFiles([fresh.file, copy]);
    // The server has a key and the page none yet: it asks.
    await page.locator('#key-dialog[open]').waitFor({ timeout: 30_000 });
    await shot(page, '8-catalog-key');
    await page.getByLabel('Key', { exact: true }).fill(KEY);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await page.locator('#uploads li[data-done]').nth(1).waitFor({ timeout: 120_000 });
    const states = await page.locator('#uploads .state').allTextContents();
    assert.match(states[0]!, /^Added as “/);
    assert.match(states[1]!, /^Not added: it is another copy of “/);
    assert.equal(
      await page
        .locator('#uploads progress')
        .first()
        .evaluate((p: HTMLProgressElement) => p.value),
      1,
    );
    await page.locator('#count').filter({ hasText: 'of 5' }).waitFor({ timeout: 15_000 });
    await page
      .locator('#duplicates li')
      .filter({ hasText: path.basename(copy) })
      .waitFor({ timeout: 15_000 });
    await shot(page, '9-catalog-uploaded');

    const added = (
      (await (await fetch(`${server.url}/api/v1/tracks?limit=200`)).json()) as { tracks: { id: string; title: string; file_name: string }[] }
    ).tracks.find((x) => x.file_name === fresh.name)!;
    assert.ok(added, 'the upload is in the catalog');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: `Delete ${added.title}` }).click();
    await page
      .locator('#count')
      .filter({ hasText: `Deleted “${added.title}”.` })
      .waitFor({ timeout: 30_000 });
    await page.locator('#count').filter({ hasText: 'of 4' }).waitFor({ timeout: 15_000 });
    assert.equal((await fetch(`${server.url}/api/v1/tracks/${added.id}`)).status, 404);
    await shot(page, '10-catalog-deleted');
  } finally {
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});
