import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { z } from 'zod';
import { CACHE_DIR, CONDITIONS, makeClip } from '../tools/corpus.js';
import { cliEnv, smallCorpusSplit, tempDataDir, TrackInfo } from './fixtures.js';

const run = promisify(execFile);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
// The CLI runs as a user runs it first: no DATABASE_URL, so on the embedded catalog.
const env = cliEnv();
const cli = (...args: string[]) =>
  run(process.execPath, [CLI, ...args], { maxBuffer: 1 << 24, env }).catch((e: { code: number; stdout: string; stderr: string }) => e);

const IdentifyLine = z.object({
  file: z.string(),
  matches: z.array(
    z.object({
      track: TrackInfo,
      confidence: z.number().min(0).max(1),
      offset_seconds: z.number(),
      aligned_hashes: z.number().int(),
    }),
  ),
});

test('ingest, identify --json, tracks list and rm through the command line', async () => {
  const { catalog, outside } = await smallCorpusSplit();
  const { dataDir } = await tempDataDir('embedded');
  const folder = path.dirname(catalog[0]!.file);
  const some = catalog.slice(0, 3).map((t) => t.file);
  const ing = (await cli('ingest', '--data-dir', dataDir, ...some)) as { stdout: string };
  assert.match(ing.stdout, /ingested 3 new track\(s\), skipped 0/);
  assert.match(ing.stdout, /x real time/);
  const again = (await cli('ingest', '--data-dir', dataDir, ...some)) as { stdout: string };
  assert.match(again.stdout, /ingested 0 new track\(s\), skipped 3/);

  const clean = CONDITIONS[0]!;
  const pos = await makeClip(catalog[1]!.file, path.join(CACHE_DIR, 'test-clips', `cli-pos.wav`), 12, 6, clean);
  const neg = await makeClip(outside[0]!.file, path.join(CACHE_DIR, 'test-clips', `cli-neg.wav`), 12, 6, clean);
  const out = (await cli('identify', '--data-dir', dataDir, '--json', pos, neg)) as { code: number; stdout: string };
  assert.equal(out.code, 1, 'a clip without a match fails the command, for scripts');
  const [a, b] = out.stdout
    .trim()
    .split('\n')
    .map((l) => IdentifyLine.parse(JSON.parse(l)));
  assert.equal(a!.matches[0]!.track.file_name, catalog[1]!.name);
  assert.ok(Math.abs(a!.matches[0]!.offset_seconds - 12) <= 0.5);
  assert.deepEqual(b!.matches, []);

  // The index is derived data: rebuilt from the stored originals, it answers the same.
  const rebuilt = (await cli('rebuild-index', '--data-dir', dataDir)) as { stdout: string };
  assert.match(rebuilt.stdout, /rebuilt the index of 3 track\(s\)/);
  const again2 = (await cli('identify', '--data-dir', dataDir, '--json', pos, neg)) as { stdout: string };
  assert.deepEqual(
    again2.stdout
      .trim()
      .split('\n')
      .map((l) => IdentifyLine.parse(JSON.parse(l)).matches.map((m) => [m.track.id, m.offset_seconds])),
    [a!.matches.map((m) => [m.track.id, m.offset_seconds]), []],
  );

  const list = (await cli('tracks', 'list', '--data-dir', dataDir, '--json')) as { stdout: string };
  const tracks = JSON.parse(list.stdout).tracks as { id: string; file_name: string }[];
  assert.equal(tracks.length, 3);
  const victim = tracks.find((t) => t.file_name === catalog[1]!.name)!;
  const set = (await cli('tracks', 'set', '--data-dir', dataDir, victim.id, '--title', 'Electro', '--artist', 'Pushover', '--json')) as { stdout: string };
  const changed = TrackInfo.parse(JSON.parse(set.stdout));
  assert.deepEqual([changed.id, changed.title, changed.artist], [victim.id, 'Electro', 'Pushover']);
  const cleared = (await cli('tracks', 'set', '--data-dir', dataDir, victim.id, '--artist', '', '--json')) as { stdout: string };
  assert.equal(TrackInfo.parse(JSON.parse(cleared.stdout)).artist, null);
  await cli('tracks', 'rm', '--data-dir', dataDir, victim.id);
  const after = (await cli('identify', '--data-dir', dataDir, '--json', pos)) as { stdout: string };
  assert.deepEqual(IdentifyLine.parse(JSON.parse(after.stdout)).matches, []);

  const missing = (await cli('tracks', 'rm', '--data-dir', dataDir, victim.id)) as { code: number; stderr: string };
  assert.equal(missing.code, 1, 'a runtime failure, not a usage error');
  assert.match(missing.stderr, /TRACK_NOT_FOUND/);
  const bad = (await cli('identify', '--data-dir', dataDir, path.join(folder, 'nope.ogg'))) as { code: number; stderr: string };
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /FILE_NOT_FOUND.*nope\.ogg/);
});

test('usage and configuration mistakes: one line and the usage, exit 2, before any model or catalog loads', async () => {
  const { dataDir } = await tempDataDir('embedded');
  const version = (await cli('--version')) as { stdout: string };
  assert.match(version.stdout, /^audio-ident \d+\.\d+\.\d+\n$/);
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['identify', '--bogus', 'x.wav'], {}, /Unknown option '--bogus'/],
    [['tracks', 'list', '--data-dir'], {}, /--data-dir/],
    [['serve'], { PORT: 'abc' }, /invalid environment: PORT/],
    [['ingest', '--data-dir', dataDir], {}, /ingest needs PATH/],
    [['tracks', 'remove', 'x'], {}, /tracks needs 'list', 'rm ID' or 'set ID'/],
    [['frobnicate'], {}, /unknown command 'frobnicate'/],
    [['tracks', 'set', 'x'], {}, /with --title, --artist or --album/],
  ];
  for (const [args, extra, message] of cases) {
    const r = (await run(process.execPath, [CLI, ...args], { env: { ...env, ...extra } }).catch((e) => e)) as { code: number; stdout: string; stderr: string };
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /usage: audio-ident/, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(r.stdout, '');
  }
  const help = (await cli('serve', '--help')) as { stdout: string };
  assert.match(help.stdout, /^usage: audio-ident serve/);
  assert.match(help.stdout, /environment: .*HOST, PORT, AUDIO_IDENT_API_KEY, AUDIO_IDENT_ALLOW_OPEN/);
  assert.doesNotMatch(help.stdout, /rebuild-index/, "the command's own usage, not the global one");
});
