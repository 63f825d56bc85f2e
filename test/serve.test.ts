// `audio-ident serve` as users run it: embedded catalog, then SIGTERM with a request in flight.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openDatabase } from '../src/catalog/database.js';
import { CACHE_DIR, CONDITIONS, makeClip } from '../tools/corpus.js';
import { cliEnv, smallCorpusSplit, tempDataDir } from './fixtures.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

test('serve on the embedded catalog finishes the request in flight on SIGTERM, then releases the data dir', async () => {
  const { catalog } = await smallCorpusSplit();
  const config = await tempDataDir('embedded');
  const env = cliEnv();
  const child = spawn(process.execPath, [CLI, 'serve', '--data-dir', config.dataDir], { env: { ...env, PORT: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = /"url":"([^"]+)"/.exec(log);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(log)));
  });
  const clip = await makeClip(catalog[0]!.file, path.join(CACHE_DIR, 'test-clips', 'serve-20s.wav'), 5, 20, CONDITIONS[0]!);
  // The body goes in two halves with SIGTERM between them: the request is surely in flight.
  const boundary = 'serve-test';
  const whole = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="clip.wav"\r\n\r\n`),
    await readFile(clip),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  let sentFirst: () => void;
  const firstHalfSent = new Promise<void>((r) => (sentFirst = r));
  let part = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (part === 0) {
        controller.enqueue(new Uint8Array(whole.subarray(0, whole.length >> 1)));
        part = 1;
        sentFirst();
      } else {
        await new Promise((r) => setTimeout(r, 300));
        controller.enqueue(new Uint8Array(whole.subarray(whole.length >> 1)));
        controller.close();
      }
    },
  });
  const inFlight = fetch(`${url}/api/v1/search`, {
    method: 'POST',
    body,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    duplex: 'half',
  } as RequestInit);
  await firstHalfSent;
  await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  const res = await inFlight;
  assert.equal(res.status, 200, await res.clone().text());
  assert.deepEqual(((await res.json()) as { exact_matches: unknown[] }).exact_matches, []);
  assert.equal(await exited, 0, log);
  assert.match(log, /"msg":"shutting down","signal":"SIGTERM"/);
  // The embedded catalog is free again.
  const db = await openDatabase(config);
  await db.close();
});
