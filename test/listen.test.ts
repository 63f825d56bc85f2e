// Live listening over a real WebSocket: real audio streamed at real-time pace, decoded in process
// (no ffmpeg is ever started for a session), and every kind of bad input closed with its code and
// reason, leaving no session behind.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { decodeFile } from '../src/audio/decode.js';
import { OpusPcmStream } from '../src/audio/opus/opus-decode.js';
import { startServer, type RunningServer } from '../src/serve.js';
import { CONDITIONS, makeClip, type CorpusTrack, CLIP_DIR } from '../tools/corpus.js';
import { smallCorpusSplit, tempDataDir } from './fixtures.js';
import { listen, results } from '../tools/listen-client.js';
import { recordWithChromium } from './media-recorder.js';

const run = promisify(execFile);
let server: RunningServer;
let catalog: CorpusTrack[];
let outside: CorpusTrack[];
const wsUrl = () => `${server.url.replace('http', 'ws')}/api/v1/listen`;

before(async () => {
  ({ catalog, outside } = await smallCorpusSplit());
  server = await startServer(await tempDataDir('server', { port: 0 }));
  const s = await server.engine.ingest(catalog.slice(0, 6).map((t) => t.file));
  assert.equal(s.created, 6);
});
after(async () => {
  await server?.close();
});

const clip = (t: CorpusTrack, start: number, seconds: number, cond: string) => {
  const c = CONDITIONS.find((x) => x.name === cond)!;
  return makeClip(t.file, path.join(CLIP_DIR, `${t.name}-${start}-${seconds}-${c.name.replace(/\W+/g, '_')}.${c.ext}`), start, seconds, c);
};
/** A clean WAV clip as WebM/Opus, as MediaRecorder sends it. */
const webm = async (wav: string) => {
  const out = wav.replace(/\.wav$/, '.live.webm');
  if (!existsSync(out)) await run('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-c:a', 'libopus', '-b:a', '32k', out]);
  return out;
};
// No connection open and no session left in any matching thread.
const idle = (s: RunningServer) => ({ sessions: 0, threads: s.listen.stats().threads.map(() => 0) });
const settled = async () => {
  const busy = () => server.listen.stats().sessions + server.listen.stats().threads.reduce((a, b) => a + b, 0);
  for (let i = 0; i < 40 && busy(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(server.listen.stats(), idle(server));
};

/** ffmpeg processes this test process (which runs the server) has running now. */
function ffmpegChildren(): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const [comm, rest] = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ');
      if (comm!.endsWith('(ffmpeg') && Number(rest!.split(' ')[1]) === process.pid) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Runs the sessions while watching for ffmpeg children; there must be none. */
async function withoutFfmpeg<T>(sessions: Promise<T>): Promise<T> {
  let seen = 0;
  const watch = setInterval(() => (seen = Math.max(seen, ffmpegChildren().length)), 100);
  try {
    return await sessions;
  } finally {
    clearInterval(watch);
    assert.equal(seen, 0, 'a live session started ffmpeg');
  }
}

test('WebM/Opus streams, clean and noisy, get a provisional then a final answer with the right track and offset', { timeout: 90_000 }, async () => {
  const cases = [
    { t: catalog[0]!, start: 30, cond: 'clean' },
    { t: catalog[3]!, start: 45, cond: 'clean' },
    { t: catalog[1]!, start: 25, cond: 'white 10 dB' },
    { t: catalog[4]!, start: 35, cond: 'babble 5 dB' },
    { t: catalog[2]!, start: 40, cond: 'white 10 dB' },
  ];
  const audio = await Promise.all(cases.map(async (c) => readFile(await webm(await clip(c.t, c.start, 8, c.cond)))));
  const runs = await withoutFfmpeg(
    Promise.all(cases.map((_, i) => listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio: audio[i]!, seconds: 8 }))),
  );
  let noisyRight = 0;
  runs.forEach((r, i) => {
    const c = cases[i]!;
    const rs = results(r);
    assert.equal(r.received[0]?.msg.type, 'ready');
    assert.equal(r.code, 1000);
    const finals = rs.filter((x) => x.status === 'final');
    // Noisy audio may go unanswered (the bench measures how often); it may never be answered wrongly.
    for (const f of finals) assert.equal(f.matches[0]!.track.file_name, c.t.name, `${c.cond} ${c.t.name}`);
    if (c.cond !== 'clean') {
      if (finals.length) noisyRight++;
      else return;
    }
    assert.equal(rs[0]?.status, 'provisional', `${c.t.name}: ${JSON.stringify(r.received.map((x) => x.msg.type))}`);
    assert.equal(rs[0]?.matches[0]?.track.file_name, c.t.name);
    for (const f of finals) {
      assert.ok(Math.abs(f.matches[0]!.offset_seconds - c.start) <= 0.5, `offset ${f.matches[0]!.offset_seconds}`);
      // The live position is the offset plus the audio heard.
      assert.ok(Math.abs(f.matches[0]!.position_seconds - (c.start + f.heard_seconds)) <= 0.5);
    }
    // Clean audio is answered early, and its position followed; noisy audio may firm up only as
    // the stream ends (seen: 10 dB white noise first answered after 7.8 of its 8 s).
    if (c.cond !== 'clean') return;
    assert.ok(finals.length >= 2, `${c.t.name}: finals ${finals.length}`);
    assert.ok(finals.at(-1)!.matches[0]!.position_seconds > finals[0]!.matches[0]!.position_seconds, 'the position moves along');
  });
  assert.ok(noisyRight >= 2, `noisy streams answered: ${noisyRight}/3`);
  console.log(`first answer after ${runs.map((r) => results(r)[0]?.heard_seconds ?? '-').join(', ')} s of audio`);
  await settled();
});

test('a stream played faster or slower ends final and right, its position moving at its speed', { timeout: 90_000 }, async () => {
  const cases = [
    { t: catalog[0]!, start: 40, steps: ['speed:1.03'], scale: 1.03 },
    { t: catalog[1]!, start: 30, steps: ['speed:0.97'], scale: 0.97 },
    { t: catalog[2]!, start: 50, steps: ['tempo:1.03'], scale: 1.03 },
    { t: catalog[3]!, start: 35, steps: ['tempo:0.97'], scale: 0.97 },
  ];
  const audio = await Promise.all(
    cases.map(async (c) => {
      const name = c.steps.join('_').replace(/\W+/g, '_');
      const wav = await makeClip(c.t.file, path.join(CLIP_DIR, `${c.t.name}-${c.start}-8-${name}.wav`), c.start, 8, { name, steps: c.steps, ext: 'wav' });
      return readFile(await webm(wav));
    }),
  );
  const runs = await Promise.all(cases.map((_, i) => listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio: audio[i]!, seconds: 8 })));
  runs.forEach((r, i) => {
    const c = cases[i]!;
    const finals = results(r).filter((x) => x.status === 'final');
    assert.equal(r.code, 1000);
    assert.ok(finals.length >= 2, `${c.steps}: finals ${finals.length}`);
    for (const f of finals) {
      const m = f.matches[0]!;
      assert.equal(m.track.file_name, c.t.name, `${c.steps}`);
      assert.ok(Math.abs(m.offset_seconds - c.start) <= 0.5, `${c.steps}: offset ${m.offset_seconds}`);
      // Each second heard is c.scale seconds of the track.
      assert.ok(
        Math.abs(m.position_seconds - (c.start + c.scale * f.heard_seconds)) <= 0.5,
        `${c.steps}: position ${m.position_seconds} at ${f.heard_seconds}`,
      );
    }
  });
  await settled();
});

test('non-catalog music and silence end in no_match', { timeout: 90_000 }, async () => {
  const silence = Buffer.alloc(16000 * 4 * 6); // 6 s of pcm-f32le zeros at 16 kHz
  const [music, quiet] = await Promise.all([
    listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio: await readFile(await webm(await clip(outside[0]!, 20, 8, 'clean'))), seconds: 8 }),
    listen(wsUrl(), { start: { type: 'start', format: 'pcm-f32le', sample_rate: 16000 }, audio: silence, seconds: 6 }),
  ]);
  for (const r of [music, quiet]) {
    assert.deepEqual(
      results(r).filter((x) => x.status === 'final'),
      [],
    );
    assert.equal(r.received.at(-1)?.msg.type, 'no_match');
    assert.equal(r.code, 1000);
  }
  await settled();
});

test('pcm-f32le at 48 kHz (an AudioWorklet client) needs no ffmpeg and is identified', { timeout: 90_000 }, async () => {
  const t = catalog[2]!;
  const pcm16 = await decodeFile(t.file, { maxSeconds: 60 });
  // The client's own 48 kHz signal: 16 kHz audio upsampled by 3 with linear interpolation.
  const from = 20 * 16000;
  const n = 6 * 48000;
  const pcm48 = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = from + i / 3;
    const j = Math.floor(p);
    pcm48[i] = pcm16[j]! + (pcm16[j + 1]! - pcm16[j]!) * (p - j);
  }
  const r = await withoutFfmpeg(
    listen(wsUrl(), { start: { type: 'start', format: 'pcm-f32le', sample_rate: 48000 }, audio: Buffer.from(pcm48.buffer), seconds: 6 }),
  );
  const final = results(r).find((x) => x.status === 'final');
  assert.equal(final?.matches[0]?.track.file_name, t.name);
  assert.ok(Math.abs(final!.matches[0]!.offset_seconds - 20) <= 0.5);
  await settled();
});

test('a continuous stream of two tracks back to back reports both, with the change time', { timeout: 90_000 }, async () => {
  const [a, b] = [catalog[0]!, catalog[5]!];
  const joined = path.join(CLIP_DIR, `continuous-${a.name}-${b.name}.webm`);
  if (!existsSync(joined)) {
    const ca = await clip(a, 60, 12, 'clean');
    const cb = await clip(b, 15, 14, 'clean');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', ca, '-i', cb, '-filter_complex', '[0:a][1:a]concat=n=2:v=0:a=1', '-c:a', 'libopus', '-b:a', '32k', joined]);
  }
  const r = await withoutFfmpeg(
    listen(wsUrl(), { start: { type: 'start', format: 'webm-opus', continuous: true }, audio: await readFile(joined), seconds: 26 }),
  );
  const finals = results(r).filter((x) => x.status === 'final');
  const tracks = finals.map((f) => f.matches[0]!.track.file_name).filter((n, i, all) => i === 0 || all[i - 1] !== n);
  assert.deepEqual(tracks, [a.name, b.name]);
  const change = finals.find((f) => f.changed_at_seconds !== undefined);
  assert.ok(change && Math.abs(change.changed_at_seconds! - 12) <= 2, `change at ${change?.changed_at_seconds}`);
  assert.ok(Math.abs(change!.matches[0]!.offset_seconds - 15) <= 1, `second track offset ${change!.matches[0]!.offset_seconds}`);
  await settled();
});

test("a WebM recorded by Chromium's MediaRecorder (live layout) is decoded in process and identified", { timeout: 90_000 }, async () => {
  const t = catalog[1]!;
  const wav = path.join(CLIP_DIR, `${t.name}-50-12-48k.wav`);
  if (!existsSync(wav)) await run('ffmpeg', ['-v', 'error', '-y', '-ss', '50', '-t', '12', '-i', t.file, '-ar', '48000', '-ac', '2', '-c:a', 'pcm_s16le', wav]);
  const slices = await recordWithChromium(wav, 8);
  const recording = Buffer.concat(slices);
  // What sets a live recording apart: Segment and Cluster of unknown size (all-ones sizes).
  const unknownSize = (id: string) => recording.indexOf(Buffer.from(`${id}01ffffffffffffff`, 'hex')) >= 0;
  assert.ok(unknownSize('18538067') && unknownSize('1f43b675'), 'live Segment and Cluster');
  // The slices as the recorder cut them decode to the same PCM as the whole recording.
  const decode = async (parts: Buffer[]) => {
    const s = await OpusPcmStream.open('webm');
    const pcm = parts.flatMap((p) => [...s.push(p)]);
    s.end(true);
    s.free();
    return pcm;
  };
  const whole = await decode([recording]);
  assert.deepEqual(await decode(slices), whole);
  assert.ok(whole.length > 7 * 16000, `${whole.length} samples`);
  const r = await withoutFfmpeg(listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio: recording, seconds: 8 }));
  const final = results(r).find((x) => x.status === 'final');
  assert.equal(final?.matches[0]?.track.file_name, t.name);
  // The fake microphone starts the file when capture opens, a little before the recorder does.
  const offset = final!.matches[0]!.offset_seconds;
  assert.ok(offset >= 50 - 0.5 && offset <= 53, `offset ${offset}`);
  await settled();
});

/** Opens a socket, lets `act` misbehave, and returns the close code and reason. */
const closeOf = (act: (ws: WebSocket) => void, url = wsUrl()) =>
  new Promise<{ code: number; reason: string; messages: { type: string; code?: string }[] }>((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: { type: string; code?: string }[] = [];
    ws.on('open', () => act(ws));
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), messages }));
    ws.on('error', reject);
  });
const start = (extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'start', format: 'webm-opus', ...extra });

test('bad input and limits close with a code and a reason, and nothing leaks', { timeout: 90_000 }, async () => {
  const webmBytes = await readFile(await webm(await clip(catalog[0]!, 30, 8, 'clean')));
  const vorbis = path.join(CLIP_DIR, `${catalog[0]!.name}-30-8.vorbis.ogg`);
  if (!existsSync(vorbis)) await run('ffmpeg', ['-v', 'error', '-y', '-i', await clip(catalog[0]!, 30, 8, 'clean'), '-c:a', 'libvorbis', vorbis]);
  const vorbisBytes = await readFile(vorbis);
  const pcmSeconds = (s: number) => Buffer.alloc(16000 * 4 * s, 0);
  const cases: [string, Promise<{ code: number; reason: string; messages: { type: string; code?: string }[] }>, number, RegExp][] = [
    ['binary before start', closeOf((ws) => ws.send(Buffer.from([1, 2, 3]))), 1008, /before the start/],
    ['malformed JSON', closeOf((ws) => ws.send('{"type": "start", ')), 1008, /JSON/],
    ['unknown message', closeOf((ws) => ws.send(JSON.stringify({ type: 'dance' }))), 1008, /unknown message type "dance"/],
    ['unsupported format', closeOf((ws) => ws.send(start({ format: 'mp3' }))), 1003, /unsupported format "mp3"/],
    ['pcm without its rate', closeOf((ws) => ws.send(start({ format: 'pcm-f32le' }))), 1008, /sample_rate/],
    [
      'start twice',
      closeOf((ws) => {
        ws.send(start());
        ws.send(start());
      }),
      1008,
      /twice/,
    ],
    ['vibe lane', closeOf((ws) => ws.send(start({ mode: 'vibe' }))), 1008, /vibe lane/],
    [
      'chunk over the limit',
      closeOf((ws) => {
        ws.send(start());
        ws.send(Buffer.alloc(200 * 1024, 1));
      }),
      1009,
      /at most 131072/,
    ],
    [
      'faster than real time',
      closeOf((ws) => {
        ws.send(start({ format: 'pcm-f32le', sample_rate: 16000 }));
        for (let i = 0; i < 8; i++) ws.send(pcmSeconds(1));
      }),
      4429,
      /faster than real time/,
    ],
    [
      'no audio for 10 s',
      closeOf((ws) => {
        ws.send(start());
        ws.send(webmBytes.subarray(0, 2000));
      }),
      4408,
      /no audio for 10 s/,
    ],
    [
      'garbage audio',
      closeOf((ws) => {
        ws.send(start());
        ws.send(Buffer.alloc(60000, 7));
        setTimeout(() => ws.send(JSON.stringify({ type: 'stop' })), 300);
      }),
      1007,
      /could not be decoded: WebM: the stream does not begin with an EBML header/,
    ],
    [
      'Vorbis declared as ogg-opus',
      closeOf((ws) => {
        ws.send(start({ format: 'ogg-opus' }));
        ws.send(vorbisBytes);
      }),
      1003,
      /not Ogg\/Opus/,
    ],
  ];
  const outcomes = await Promise.all(cases.map((c) => c[1]));
  outcomes.forEach((o, i) => {
    const [name, , code, reason] = cases[i]!;
    assert.equal(o.code, code, `${name}: ${o.code} ${o.reason}`);
    assert.match(o.reason, reason, name);
    assert.equal(o.messages.at(-1)?.type, 'error', name);
  });
  await settled();
});

test('a session over 30 s ends; a vanished client is dropped; a corrupt stream ends only its own session', { timeout: 90_000 }, async () => {
  // 31 s of pcm at twice real time (within the pace allowance).
  const long = listen(wsUrl(), {
    start: { type: 'start', format: 'pcm-f32le', sample_rate: 16000 },
    audio: Buffer.alloc(16000 * 4 * 31, 0),
    seconds: 31,
    speed: 2,
    stop: false,
  });
  const audio = await readFile(await webm(await clip(catalog[3]!, 45, 8, 'clean')));
  // A client that stops reading and answering pings, as a phone that lost its network.
  const vanished = closeOf((ws) => {
    ws.send(start());
    ws.send(audio.subarray(0, 2000));
    const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    // Reading again later lets this side see what the server did meanwhile.
    setTimeout(() => socket.resume(), 13_000);
  });
  // Two sessions of the same recording; 2000 bytes in the middle of the first are zeroed, which
  // wipes at least one element header (a 32 kbit/s block is ~100 bytes).
  const corrupt = Buffer.from(audio);
  corrupt.fill(0, corrupt.length >> 1, (corrupt.length >> 1) + 2000);
  const victim = listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio: corrupt, seconds: 8 });
  const survivor = listen(wsUrl(), { start: { type: 'start', format: 'webm-opus' }, audio, seconds: 8 });
  const [l, v, k, s] = await withoutFfmpeg(Promise.all([long, vanished, victim, survivor]));
  assert.equal(l.code, 1000);
  assert.match(l.reason, /maximum session length \(30 s\)/);
  assert.equal(l.received.at(-1)?.msg.type, 'no_match');
  assert.ok(v.code === 1006 || v.code === 4408, `vanished: ${v.code}`);
  assert.equal(k.code, 1007);
  assert.match(k.reason, /could not be decoded: WebM: invalid element ID/);
  assert.equal(k.received.at(-1)?.msg.type, 'error');
  assert.equal(s.code, 1000);
  assert.equal(results(s).find((x) => x.status === 'final')?.matches[0]?.track.file_name, catalog[3]!.name);
  await settled();
});

test('too many sessions are refused with 1013; shutdown closes sessions with 1001', { timeout: 90_000 }, async () => {
  const small = await startServer(await tempDataDir('server', { port: 0 }), { maxSessions: 2 });
  const url = `${small.url.replace('http', 'ws')}/api/v1/listen`;
  const opened = [new WebSocket(url), new WebSocket(url)];
  const closes = opened.map((ws) => new Promise<number>((resolve) => ws.on('close', (code) => resolve(code))));
  await Promise.all(opened.map((ws) => new Promise((r) => ws.on('open', r))));
  for (const ws of opened) ws.send(start());
  const third = await closeOf(() => {}, url);
  assert.equal(third.code, 1013);
  assert.match(third.reason, /try again later/);
  await small.close();
  assert.deepEqual(await Promise.all(closes), [1001, 1001]);
  assert.deepEqual(small.listen.stats(), idle(small));
});
