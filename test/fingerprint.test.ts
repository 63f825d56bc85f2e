import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { concatHashes, fingerprint, FingerprintStream, PROFILES, type Fingerprint, type Hashes } from '../src/exact/fingerprint.js';
import { fetchCorpus, rng } from '../tools/corpus.js';

const track = async () => {
  const [t] = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  return (await decodeFile(t!.file)).subarray(0, 40 * SAMPLE_RATE);
};

test('real music gives a dense set of hashes', async () => {
  const pcm = await track();
  const fp = fingerprint(pcm, 'index');
  const perSecond = fp.hashes.length / (pcm.length / SAMPLE_RATE);
  assert.ok(perSecond > 50 && perSecond < 400, `hashes per second: ${perSecond}`);
  assert.ok(
    fp.times.every((t) => t <= pcm.length / 512 + 1),
    'anchor times lie within the signal',
  );
});

test('a stream pushed in pieces of any size gives exactly the hashes of the whole signal', async () => {
  const pcm = await track();
  // The query profile runs two phases: pieces smaller than the second phase's skip included.
  for (const [profile, seed] of [
    ['index', 1],
    ['index', 2],
    ['index', 3],
    ['query', 3],
    ['query', 4],
  ] as const) {
    const whole = fingerprint(pcm, profile);
    const r = rng(seed);
    const s = new FingerprintStream(profile);
    const parts: Fingerprint[] = [];
    for (let at = 0; at < pcm.length; ) {
      const n = seed >= 3 ? 1 + Math.floor(r() * 7) : 1 + Math.floor(r() * 20000);
      parts.push(s.push(pcm.subarray(at, at + n)));
      at += n;
    }
    parts.push(s.end());
    // Each pair is emitted as soon as it is decided, so only the set of (time, hash) pairs is fixed.
    assert.deepEqual(pairs(concatHashes(parts)), pairs(whole));
    // Sketch words come one per frame, in order, whatever the pieces.
    whole.sketches.forEach((w, k) => assert.deepEqual(words(parts, k), Array.from(w)));
  }
});

const words = (parts: Fingerprint[], phase: number) => parts.flatMap((p) => Array.from(p.sketches[phase]!));

const pairs = (h: Hashes) => Array.from(h.hashes, (x, i) => h.times[i]! * 2 ** 22 + x).sort((a, b) => a - b);

test('a signal delayed by whole hops gives the same hashes, shifted by that many frames', async () => {
  const pcm = await track();
  const whole = fingerprint(pcm, 'query');
  for (const hops of [1, 5, 63]) {
    const delayed = new Float32Array(pcm.length + hops * PROFILES.query.hop);
    delayed.set(pcm, hops * PROFILES.query.hop);
    const d = fingerprint(delayed, 'query');
    assert.deepEqual(pairs(d), pairs({ ...whole, times: Uint32Array.from(whole.times, (t) => t + hops) }));
    // The sketch is shifted too: the frames before the signal are silent and their words empty.
    // (The second phase skips the signal's first samples undelayed but silence delayed, so its
    // first frames differ, and the words that compare them: verification never compares a
    // stream's first words.)
    // A word per band shift per frame.
    const S = 2 * PROFILES.query.sketchShifts + 1;
    assert.deepEqual(Array.from(d.sketches[0]!.subarray(hops * S)), Array.from(whole.sketches[0]!));
    assert.ok(d.sketches[0]!.subarray(0, hops * S).every((x) => x === 0));
    const lead = 4 + PROFILES.query.sketchSmooth + PROFILES.query.sketchLag;
    assert.deepEqual(Array.from(d.sketches[1]!.subarray((hops + lead) * S)), Array.from(whole.sketches[1]!.subarray(lead * S)));
  }
});

test('a sketch has a word per frame, its bits set about half the time, its strongest marked', async () => {
  const pcm = await track();
  const fp = fingerprint(pcm, 'index');
  assert.equal(fp.sketches.length, 1);
  // Frames that lie wholly inside the signal: the first ends one hop into it.
  assert.equal(fp.sketches[0]!.length, Math.floor(pcm.length / PROFILES.index.hop));
  const { sketchBands: bands, sketchStrong: strong } = PROFILES.index;
  const count = (x: number) => Array.from({ length: 16 }, (_, b) => (x >>> b) & 1).reduce((a, v) => a + v, 0);
  let ones = 0;
  let marked = 0;
  for (const w of fp.sketches[0]!) {
    assert.equal((w & 0xffff) >>> bands, 0);
    ones += count(w & 0xffff);
    if (count(w >>> 16) === strong) marked++;
  }
  const share = ones / (fp.sketches[0]!.length * bands);
  assert.ok(share > 0.4 && share < 0.6, `share of bits set: ${share}`);
  assert.ok(marked > 0.99 * fp.sketches[0]!.length, `frames with exactly ${strong} strong bits: ${marked}`);
  assert.equal(
    fingerprint(new Float32Array(10 * SAMPLE_RATE), 'index').sketches[0]!.some((x) => x !== 0),
    false,
  );
});

test('silence gives no hashes', () => {
  assert.equal(fingerprint(new Float32Array(10 * SAMPLE_RATE), 'query').hashes.length, 0);
});

test('a bad configuration is refused', () => {
  assert.throws(() => new FingerprintStream({ ...PROFILES.index, fftSize: 500 }), /fingerprint config/);
  assert.throws(() => new FingerprintStream({ ...PROFILES.index, dtMax: 500 }), /fingerprint config/);
  assert.throws(() => new FingerprintStream({ ...PROFILES.index, phases: 0 }), /fingerprint config/);
  assert.throws(() => new FingerprintStream({ ...PROFILES.index, sketchBands: 17 }), /fingerprint config/);
  assert.throws(() => new FingerprintStream({ ...PROFILES.index, sketchStrong: 0 }), /fingerprint config/);
  assert.throws(() => new FingerprintStream({ ...PROFILES.index, sketchHiBin: 900 }), /fingerprint config/);
  assert.throws(() => new FingerprintStream('index').push(new Float64Array(4) as unknown as Float32Array), /Float32Array/);
});

// Matching threads are ended from outside (a server closing, a stuck thread replaced). A native
// call that fails because its thread is ending must end that thread alone: before the addon was
// built to swallow such errors, one of them aborted the whole process (seen in CI). The threads
// run in a child process, so that an abort fails this test instead of ending the test runner.
test('threads ended in the middle of fingerprinting end alone: the process goes on', () => {
  const fingerprintModule = new URL('../src/exact/fingerprint.js', import.meta.url).href;
  const thread = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(fingerprintModule)}).then(({ fingerprint }) => {
      const pcm = new Float32Array(16000 * 10).map((_, i) => Math.sin(i * 0.05) + Math.sin(i * 0.31));
      parentPort.postMessage('busy');
      for (;;) fingerprint(pcm, 'query');
    });`;
  const parent = `
    const { Worker } = require('node:worker_threads');
    let seed = 7;
    const delay = () => ((seed = (seed * 48271) % 2147483647) % 25);
    (async () => {
      for (let i = 0; i < 60; i++) {
        const w = new Worker(${JSON.stringify(thread)}, { eval: true });
        await new Promise((r) => w.once('message', r));
        await new Promise((r) => setTimeout(r, delay()));
        await w.terminate();
      }
      console.log('ended 60 threads');
    })();`;
  const r = spawnSync(process.execPath, ['-e', parent], { encoding: 'utf8', timeout: 120_000 });
  assert.deepEqual([r.status, r.signal, r.stdout.trim()], [0, null, 'ended 60 threads'], r.stderr);
});
