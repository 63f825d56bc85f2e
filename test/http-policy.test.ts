// Operator policies over real HTTP: per-address rate limits on search and ingest, CORS for the
// listed origins only.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type RunningServer } from '../src/serve.js';
import { tempDataDir } from './fixtures.js';

const KEY = 'policy-key-0123456789';
let server: RunningServer;
before(async () => {
  server = await startServer(
    await tempDataDir('embedded', { apiKey: KEY, port: 0, rateLimitSearch: 3, rateLimitIngest: 2, corsOrigins: ['https://app.example'] }),
  );
});
after(() => server?.close());

const post = (p: string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${p}`, { method: 'POST', body: new FormData(), headers: { authorization: `Bearer ${KEY}`, ...headers } });

test('search and ingest are limited per address, with 429 TOO_FAST and Retry-After; other routes are not', async () => {
  // An empty form is refused (400) after the limiter let it through: it still counts.
  for (let i = 0; i < 3; i++) assert.equal((await post('/api/v1/search')).status, 400, `search ${i}`);
  const limited = await post('/api/v1/search');
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'TOO_FAST');
  for (let i = 0; i < 2; i++) assert.equal((await post('/api/v1/tracks')).status, 400, `ingest ${i}`);
  assert.equal((await post('/api/v1/tracks')).status, 429);
  assert.equal((await post('/api/v1/tracks', { authorization: 'Bearer wrong-key-0123456789' })).status, 401, 'the key is checked first');
  for (let i = 0; i < 10; i++) assert.equal((await fetch(`${server.url}/api/v1/tracks`)).status, 200);
});

test('CORS answers the listed origin, and says nothing to others', async () => {
  const preflight = (origin: string) =>
    fetch(`${server.url}/api/v1/tracks`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
  const ok = await preflight('https://app.example');
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(ok.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  const other = await preflight('https://evil.example');
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const get = await fetch(`${server.url}/api/v1/tracks`, { headers: { origin: 'https://app.example' } });
  assert.equal(get.headers.get('access-control-allow-origin'), 'https://app.example');
});
