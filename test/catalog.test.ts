// The catalog contract, run against a real PostgreSQL server and against the embedded default.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Catalog, type NewTrack } from '../src/catalog/catalog.js';
import { openDatabase } from '../src/catalog/database.js';
import { migrate } from '../src/catalog/migrations.js';
import { isAppError } from '../src/base/errors.js';
import { tempDataDir, type Backend } from './fixtures.js';

const newTrack = (n: number, over: Partial<NewTrack> = {}): NewTrack & { id: string } => ({
  id: randomUUID(),
  title: `Song ${n}`,
  artist: n % 2 ? 'Odd Artist' : 'Even_Artist 100%',
  album: null,
  duration_seconds: 100 + n,
  sample_rate: 44100,
  channels: 2,
  bitrate: null,
  format: 'ogg',
  file_name: `song-${n}.ogg`,
  sha256: `${n}`.padStart(64, 'a'),
  file_size_bytes: 5_000_000_000 + n, // beyond 32 bits
  raw_path: `raw/aa/${n}.ogg`,
  ...over,
});

for (const backend of ['server', 'embedded'] as Backend[]) {
  test(`catalog on the ${backend} PostgreSQL: migrations, visibility, listing, deletion`, async () => {
    const config = await tempDataDir(backend);
    const db = await openDatabase(config);
    try {
      assert.equal(db.kind, backend);
      assert.equal(await migrate(db.sql), 3);
      assert.equal(await migrate(db.sql), 0, 'migrations apply once');
      const c = new Catalog(db.sql);

      const rows = await c.insertPending([newTrack(1), newTrack(2), newTrack(3)], 'host:1');
      assert.ok(rows.every((r) => r !== null));
      const [a, b, d] = rows as NonNullable<(typeof rows)[number]>[];
      assert.ok(a!.fpId < b!.fpId && b!.fpId < d!.fpId, 'index numbers ascend');
      assert.equal(a!.file_size_bytes, 5_000_000_001);
      // Pending rows are invisible to every reader.
      assert.equal(await c.count(), 0);
      assert.equal(await c.get(a!.id), undefined);
      assert.equal(await c.getBySha(a!.sha256), undefined);
      assert.equal((await c.byFpIds([a!.fpId])).size, 0);
      assert.deepEqual((await c.unsettled()).map((r) => [r.id, r.status, r.owner]).sort(), [a, b, d].map((t) => [t!.id, 'pending', 'host:1']).sort());

      await c.markIndexed([a!.id, b!.id, d!.id]);
      assert.equal(await c.count(), 3);
      assert.equal((await c.get(b!.id))?.title, 'Song 2');
      assert.equal((await c.getBySha(d!.sha256))?.id, d!.id);
      assert.deepEqual([...(await c.byFpIds([a!.fpId, d!.fpId])).keys()].sort(), [a!.fpId, d!.fpId].sort());
      assert.equal(await c.get('not-a-uuid'), undefined);

      // The same file again: no second row.
      assert.deepEqual(await c.insertPending([newTrack(1)], 'host:1'), [null]);

      // Text filter (LIKE wildcards in the text are literal) and pages.
      assert.deepEqual(
        (await c.list({ q: 'odd' })).tracks.map((t) => t.title),
        ['Song 1', 'Song 3'],
      );
      assert.deepEqual(
        (await c.list({ q: '_artist 100%' })).tracks.map((t) => t.title),
        ['Song 2'],
      );
      assert.equal((await c.list({ q: 'Song%3' })).total, 0);
      const page = await c.list({ limit: 2, offset: 1 });
      assert.equal(page.total, 3);
      assert.equal(page.tracks.length, 2);

      // Duplicate reports go with their track.
      await c.reportDuplicate({ file_name: 'copy.mp3', sha256: 'f'.repeat(64), duplicate_of: a!.id, reason: 'same_recording', confidence: 0.97 });
      assert.equal((await c.duplicateReports())[0]?.duplicate_of, a!.id);

      assert.equal((await c.beginDelete(a!.id))?.id, a!.id);
      assert.equal(await c.beginDelete(a!.id), undefined, 'a track is deleted once');
      assert.equal(await c.get(a!.id), undefined);
      assert.equal((await c.references()).fpIds.has(a!.fpId), true, 'a row being deleted still holds its postings');
      await c.deleteRows([a!.id]);
      assert.equal(await c.count(), 2);
      assert.equal((await c.duplicateReports()).length, 0);
    } finally {
      await db.close();
    }
  });
}

test('the embedded catalog belongs to one process at a time', async () => {
  const config = await tempDataDir('embedded');
  const db = await openDatabase(config);
  try {
    // This process may open it again only after closing: a second server would share one session.
    const { spawnSync } = await import('node:child_process');
    const database = new URL('../src/catalog/database.js', import.meta.url).href;
    const probe =
      `import('${database}').then(m => m.openDatabase({ databaseUrl: undefined, dataDir: ${JSON.stringify(config.dataDir)} }))` +
      '.then(() => process.exit(0), e => { console.error(e.code, e.message); process.exit(3); })';
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /DATABASE_UNAVAILABLE .*in use by process/);
  } finally {
    await db.close();
  }
});

test('an unreachable DATABASE_URL is a clear error', async () => {
  const config = await tempDataDir('embedded', { databaseUrl: 'postgres://nobody:secret@127.0.0.1:1/none' });
  await assert.rejects(openDatabase(config), (e: unknown) => isAppError(e, 'DATABASE_UNAVAILABLE') && !e.message.includes('secret'));
});

test('tag text with control characters, or too long, is stored clean and cut between characters', async () => {
  const config = await tempDataDir('server');
  const db = await openDatabase(config);
  try {
    await migrate(db.sql);
    const c = new Catalog(db.sql);
    const title = `A\u0000B\u0007${'😀'.repeat(600)}`;
    const [row] = await c.insertPending([newTrack(7, { title, artist: 'Art\u0000ist', album: '\u0001' })], 'host:1');
    assert.ok(row);
    const chars = Array.from(row.title);
    assert.equal(chars.length, 500);
    assert.equal(chars.slice(0, 3).join(''), 'AB😀');
    assert.ok(
      chars.every((ch) => ch === 'A' || ch === 'B' || ch === '😀' || ch === '…'),
      'no half of a surrogate pair',
    );
    assert.equal(row.artist, 'Artist');
    assert.equal(row.album, '');
  } finally {
    await db.close();
  }
});
