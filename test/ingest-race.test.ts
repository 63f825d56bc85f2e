// Uploads that race: the same new file ten times at once, and an original beside its MP3
// re-encoding five times each. Each race ends with exactly one track, and every other upload
// answers 200 `duplicate`, never a 5xx.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startServer, type RunningServer } from '../src/serve.js';
import { CLIP_DIR, type CorpusTrack } from '../tools/corpus.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';

const KEY = 'test-key-0123456789abcdef';
const run = promisify(execFile);
let server: RunningServer;
let catalog: CorpusTrack[];

before(async () => {
  ({ catalog } = await smallCorpusSplit());
  server = await startServer(await tempDataDir('server', { apiKey: KEY, port: 0, vibeModel: 'off' }));
});
after(async () => {
  await server?.close();
});

interface Upload {
  status: number;
  tracks: { status: string; duplicate_of?: { reason: string } }[];
}
async function upload(file: string, name: string): Promise<Upload> {
  const form = new FormData();
  form.append('file', new Blob([await readFile(file)]), name);
  const res = await fetch(`${server.url}/api/v1/tracks`, { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } });
  return { status: res.status, ...((await res.json()) as { tracks: Upload['tracks'] }) };
}
const titles = async () => (await server.engine.listTracks()).tracks.map((t) => t.file_name);

test('the same new file uploaded ten times at once gives one track and nine duplicates', { timeout: 120_000 }, async () => {
  const t = catalog[0]!;
  const answers = await Promise.all(Array.from({ length: 10 }, () => upload(t.file, t.name)));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 200, 201], JSON.stringify(answers));
  assert.equal(answers.flatMap((a) => a.tracks).filter((x) => x.status === 'created').length, 1);
  assert.ok(answers.flatMap((a) => a.tracks).every((x) => x.status === 'created' || x.duplicate_of?.reason === 'same_file'));
  assert.deepEqual(await titles(), [t.name]);
});

test('an original and its MP3 re-encoding, five uploads of each at once, give one track', { timeout: 120_000 }, async () => {
  const t = catalog[1]!;
  const mp3 = path.join(CLIP_DIR, `${t.name}.reencoded.mp3`);
  if (!existsSync(mp3)) await run('ffmpeg', ['-v', 'error', '-y', '-i', t.file, '-c:a', 'libmp3lame', '-b:a', '128k', mp3]);
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? upload(mp3, `${t.name}.mp3`) : upload(t.file, t.name))));
  const all = answers.flatMap((a) => a.tracks);
  assert.ok(
    answers.every((a) => a.status === 200 || a.status === 201),
    JSON.stringify(answers.map((a) => a.status)),
  );
  assert.equal(all.filter((x) => x.status === 'created').length, 1, JSON.stringify(all));
  assert.equal(all.filter((x) => x.status === 'duplicate').length, 9);
  assert.equal((await titles()).length, 2);
  assert.equal(server.engine.stats().tracks, 2);
});
