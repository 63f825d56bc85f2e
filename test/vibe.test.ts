// The vibe lane end to end with the real MusiCNN model: a served catalog ingested through the
// API (tracks embedded in the worker pool), clip search in modes vibe and both, live listening in
// mode both, deletion, and a store of another model refused until `rebuild-index --vibe`.
// Skipped only when the MusiCNN weights are absent.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Config } from '../src/base/config.js';
import { isAppError } from '../src/base/errors.js';
import { Engine } from '../src/engine/engine.js';
import { startServer, type RunningServer } from '../src/serve.js';
import { MUSICNN_MODEL } from '../src/vibe/models.js';
import { rebuildVibe } from '../src/engine/rebuild.js';
import { UsearchStore } from '../src/vibe/store/usearch-store.js';
import { CONDITIONS, makeClip, type CorpusTrack, CLIP_DIR } from '../tools/corpus.js';
import { musicnnMissing, smallCorpusSplit, tempDataDir } from './fixtures.js';
import { listen } from '../tools/listen-client.js';

const run = promisify(execFile);
const KEY = 'vibe-test-key-0123456789';

interface VibeMatchBody {
  track: { id: string; file_name: string };
  similarity: number;
  embedding_model: string;
  tags: string[];
}

describe('vibe lane', { skip: musicnnMissing() }, () => {
  let server: RunningServer;
  let config: Config;
  let tracks: CorpusTrack[];
  const url = (p: string) => `${server.url}${p}`;

  before(async () => {
    const { catalog } = await smallCorpusSplit();
    // Short tracks of different packages: each is embedded in full at ingest.
    const byPkg = new Map<string, CorpusTrack>();
    for (const t of [...catalog].sort((a, b) => a.duration - b.duration)) if (!byPkg.has(t.pkg) && t.duration > 40) byPkg.set(t.pkg, t);
    tracks = [...byPkg.values()].slice(0, 4);
    config = await tempDataDir('embedded', { apiKey: KEY, port: 0, vibeModel: 'musicnn' });
    server = await startServer(config);
    const lane = server.engine.vibeStatus();
    assert.ok(lane.on, `vibe lane off: ${lane.on ? '' : lane.reason}`);
    const form = new FormData();
    for (const t of tracks) form.append('file', new Blob([await readFile(t.file)]), path.basename(t.file));
    const res = await fetch(url('/api/v1/tracks'), { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 201, await res.clone().text());
  });
  after(async () => {
    await server?.close();
  });

  const clip = (t: CorpusTrack, start: number, seconds: number, cond = 'clean') => {
    const c = CONDITIONS.find((x) => x.name === cond)!;
    return makeClip(t.file, path.join(CLIP_DIR, `${t.name}-${start}-${seconds}-${c.name.replace(/\W+/g, '_')}.${c.ext}`), start, seconds, c);
  };
  const search = async (file: string, mode: string) => {
    const form = new FormData();
    form.append('audio', new Blob([await readFile(file)]), path.basename(file));
    form.append('mode', mode);
    form.append('max_results', '3');
    return fetch(url('/api/v1/search'), { method: 'POST', body: form });
  };

  test('ingest stored a track vector and 10 s chunks every 5 s per track, with the model and top tags in the catalog', async () => {
    const count = await server.engine.vectorCount();
    assert.equal(count.track, tracks.length);
    const expectedChunks = tracks.reduce((s, t) => s + Math.max(1, Math.floor((t.duration - 10) / 5) + 1), 0);
    assert.ok(Math.abs(count.chunk - expectedChunks) <= tracks.length, `chunks ${count.chunk}, about ${expectedChunks} expected`);
    const { tracks: rows } = await server.engine.listTracks();
    for (const r of rows) {
      assert.equal(r.embedding_model, MUSICNN_MODEL.id);
      assert.equal(r.vibe_tags.length, 3);
      for (const tag of r.vibe_tags) assert.ok(MUSICNN_MODEL.tagNames.includes(tag), tag);
    }
    const health = (await (await fetch(url('/health'))).json()) as { status: string; checks: { vibe: string } };
    assert.equal(health.status, 'ok');
    assert.equal(health.checks.vibe, `ok (${MUSICNN_MODEL.id}, usearch, ${tracks.length} tracks)`);
  });

  test('search mode=vibe: a 10 s clip of a catalog track finds that track first, in the contract shape', async () => {
    for (const t of tracks) {
      const res = await search(await clip(t, 20, 10), 'vibe');
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { exact_matches: unknown[]; vibe_matches: VibeMatchBody[]; lanes: unknown; mode_used: string };
      assert.deepEqual(body.lanes, { exact: 'skipped', vibe: 'ran' });
      assert.deepEqual(body.exact_matches, []);
      assert.ok(body.vibe_matches.length >= 2 && body.vibe_matches.length <= 3, `${body.vibe_matches.length} matches`);
      assert.equal(body.vibe_matches[0]!.track.file_name, t.name);
      const sims = body.vibe_matches.map((m) => m.similarity);
      assert.deepEqual(
        sims,
        [...sims].sort((a, b) => b - a),
        'best first',
      );
      for (const m of body.vibe_matches) {
        assert.ok(m.similarity >= 0 && m.similarity <= 1);
        assert.equal(m.embedding_model, MUSICNN_MODEL.id);
        assert.equal(m.tags.length, 3);
      }
      assert.ok(sims[0]! > 0.9, `a clip of the track itself: ${sims[0]}`);
    }
  });

  test('search mode=both runs both lanes side by side and reports each', async () => {
    const t = tracks[1]!;
    const res = await search(await clip(t, 30, 10, 'Opus 32k WebM'), 'both');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { exact_matches: { track: { file_name: string } }[]; vibe_matches: VibeMatchBody[]; lanes: unknown };
    assert.deepEqual(body.lanes, { exact: 'ran', vibe: 'ran' });
    assert.equal(body.exact_matches[0]!.track.file_name, t.name);
    assert.equal(body.vibe_matches[0]!.track.file_name, t.name);
  });

  test('live listening in mode both: exact answers first and undelayed, vibe results from rolling windows, final once windows agree', {
    timeout: 120_000,
  }, async () => {
    const t = tracks[0]!;
    const wav = await clip(t, 15, 14);
    const webm = wav.replace(/\.wav$/, '.live.webm');
    if (!existsSync(webm)) await run('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-c:a', 'libopus', '-b:a', '32k', webm]);
    const r = await listen(`${server.url.replace('http', 'ws')}/api/v1/listen`, {
      start: { type: 'start', format: 'webm-opus', mode: 'both', max_results: 3 },
      audio: await readFile(webm),
      seconds: 14,
    });
    assert.equal(r.code, 1000, r.reason);
    const ready = r.received[0]!.msg as unknown as { type: string; lanes: unknown };
    assert.deepEqual([ready.type, ready.lanes], ['ready', { exact: 'on', vibe: 'on' }]);
    const msgs = r.received.map((x) => ({
      at: x.at,
      ...(x.msg as unknown as {
        type: string;
        lane?: string;
        status?: string;
        heard_seconds: number;
        matches?: { track: { file_name: string }; similarity?: number }[];
      }),
    }));
    const exact = msgs.filter((m) => m.type === 'result' && m.lane === 'exact');
    const vibe = msgs.filter((m) => m.type === 'result' && m.lane === 'vibe');
    assert.ok(
      exact.some((m) => m.status === 'final' && m.matches![0]!.track.file_name === t.name),
      'an exact final answer',
    );
    // The exact lane answers within the first seconds, before the first vibe window is due (5 s).
    assert.ok(exact[0]!.heard_seconds < 5, `first exact answer at ${exact[0]!.heard_seconds} s of audio`);
    assert.ok(exact[0]!.at < vibe[0]!.at, 'exact before vibe');
    assert.ok(vibe.length >= 2, `${vibe.length} vibe results`);
    for (const v of vibe) {
      assert.ok(v.heard_seconds >= 5);
      assert.ok(v.matches!.length >= 1 && v.matches!.length <= 3);
      assert.ok(v.matches!.every((m) => typeof m.similarity === 'number' && m.similarity >= 0 && m.similarity <= 1));
    }
    // Statuses follow agreement: a window whose top track equals the previous window's is final.
    vibe.forEach((v, i) => {
      const agrees = i > 0 && vibe[i - 1]!.matches![0]!.track.file_name === v.matches![0]!.track.file_name;
      assert.equal(v.status, agrees ? 'final' : 'provisional', `window ${i}`);
    });
    assert.equal(vibe.at(-1)!.status, 'final');
    assert.equal(vibe.at(-1)!.matches![0]!.track.file_name, t.name);
  });

  test('live listening in mode vibe: no exact lane, vibe results only', { timeout: 60_000 }, async () => {
    const t = tracks[3] ?? tracks[0]!;
    const wav = await clip(t, 20, 8);
    const webm = wav.replace(/\.wav$/, '.live.webm');
    if (!existsSync(webm)) await run('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-c:a', 'libopus', '-b:a', '32k', webm]);
    const r = await listen(`${server.url.replace('http', 'ws')}/api/v1/listen`, {
      start: { type: 'start', format: 'webm-opus', mode: 'vibe' },
      audio: await readFile(webm),
      seconds: 8,
    });
    assert.equal(r.code, 1000, r.reason);
    const msgs = r.received.map((x) => x.msg as unknown as { type: string; lane?: string; lanes?: unknown; matches?: { track: { file_name: string } }[] });
    assert.deepEqual(msgs[0]!.lanes, { exact: 'off', vibe: 'on' });
    const res = msgs.filter((m) => m.type === 'result');
    assert.ok(res.length >= 1 && res.every((m) => m.lane === 'vibe'), JSON.stringify(msgs.map((m) => [m.type, m.lane])));
    assert.equal(res.at(-1)!.matches![0]!.track.file_name, t.name);
  });

  test('deleting a track removes its vectors: it is no longer found', async () => {
    const t = tracks[2]!;
    const before = await server.engine.vectorCount();
    const row = (await server.engine.listTracks()).tracks.find((x) => x.file_name === t.name)!;
    const res = await fetch(url(`/api/v1/tracks/${row.id}`), { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 204);
    const afterCount = await server.engine.vectorCount();
    assert.equal(afterCount.track, before.track - 1);
    assert.ok(afterCount.chunk < before.chunk);
    assert.ok(!(await server.engine.inventory()).embedded.includes(row.fpId));
    const body = (await (await search(await clip(t, 20, 10), 'vibe')).json()) as { vibe_matches: VibeMatchBody[] };
    assert.ok(body.vibe_matches.every((m) => m.track.id !== row.id));
  });

  test('vectors of another model are refused at start with the command that re-embeds; rebuild-index --vibe restores the lane', {
    timeout: 300_000,
  }, async () => {
    const expected = await server.engine.vectorCount();
    await server.close();
    // Another model's vectors, as a change of AUDIO_IDENT_VIBE_MODEL would leave them.
    const store = UsearchStore.open(config.dataDir);
    const other = { id: 'another-model', dim: 8 };
    await store.replaceAll(other, [
      { fpId: 1, trackId: '00000000-0000-0000-0000-000000000000', kind: 'track', startSeconds: 0, vector: new Float32Array(8).fill(1) },
    ]);
    await store.close();
    await assert.rejects(
      Engine.open(config, { vibe: true }),
      (e: unknown) => isAppError(e, 'INDEX_MISMATCH') && /another-model/.test(e.message) && /rebuild-index --vibe/.test(e.message),
    );
    const r = await rebuildVibe(config);
    assert.equal(r.tracks, tracks.length - 1);
    const engine = await Engine.open(config, { vibe: true });
    try {
      assert.deepEqual(await engine.vectorCount(), expected);
      assert.deepEqual(engine.vibeStatus(), { on: true, model: MUSICNN_MODEL.id, store: 'usearch' });
    } finally {
      await engine.close();
    }
  });
});
