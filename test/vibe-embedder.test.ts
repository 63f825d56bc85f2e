// The vibe lane's models end to end: MusiCNN converted from the shared Keras weights and run in
// the worker pool agrees with a plain reference forward pass of the same graph and weights on
// real corpus tracks, and so do the layer statistics of bench:vibe's analysis model
// (bench/vibe-layer-model.ts); track chunking; and every way of having no model says why.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig, type Config } from '../src/base/config.js';
import { decodeFile } from '../src/audio/decode.js';
import { openEmbedder, type Embedder, type Embedding } from '../src/vibe/embedder.js';
import { MUSICNN_INPUT, musicnnPatches } from '../src/vibe/inputs.js';
import { readKerasH5 } from '../src/vibe/keras-h5.js';
import { MSD_TAGS, musicnnOnnx } from '../src/vibe/models.js';
import { layerModelOnnx, openLayerEmbedder } from '../bench/vibe-layer-model.js';
import { fetchCorpus, SHARED_DIR } from '../tools/corpus.js';
import { forward } from './musicnn-reference.js';

const H5 = path.join(SHARED_DIR, 'models', 'musicnn', 'MSD_musicnn.h5');
let dataDir: string;
let config: Config;
let embedder: Embedder;

before(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'vibe-'));
  config = loadConfig({}, { dataDir, musicnnH5: H5, vibeModel: 'musicnn', vibeThreads: 1, logLevel: 'silent' });
  const opened = await openEmbedder(config);
  assert.ok(opened.embedder, 'reason' in opened ? opened.reason : '');
  embedder = opened.embedder;
});

after(async () => {
  await embedder?.close();
  await rm(dataDir, { recursive: true, force: true });
});

test('the converted model is derived data under the data dir, keyed by the weights sha256, written once', async () => {
  const sha = createHash('sha256')
    .update(await readFile(H5))
    .digest('hex');
  const file = await musicnnOnnx(H5, dataDir);
  assert.equal(file, path.join(dataDir, 'models', `musicnn-msd-pool-${sha}.onnx`));
  const { mtimeMs } = await stat(file);
  assert.equal(await musicnnOnnx(H5, dataDir), file);
  assert.equal((await stat(file)).mtimeMs, mtimeMs, 'not rewritten');
  assert.deepEqual(embedder.model(), { id: 'musicnn-msd-pool', dim: 1506, sampleRate: 16000, tagNames: MSD_TAGS });
});

test('ONNX through the pool agrees with a plain forward pass of the Keras graph on real tracks (tags within 1e-3)', async () => {
  const keras = readKerasH5(await readFile(H5));
  const tracks = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  // Different games (packages), so the check covers different music.
  const picks = tracks.filter((t, i) => tracks.findIndex((u) => u.pkg === t.pkg) === i).slice(0, 3);
  for (const track of picks) {
    const pcm = await decodeFile(track.file);
    // 4.5 s from 30 s in: two patches, so the mean over patches is checked too.
    const clip = pcm.subarray(30 * 16000, 34.5 * 16000);
    const units = musicnnPatches(clip);
    assert.equal(units.starts.length, 2);
    const size = MUSICNN_INPUT.patchFrames * MUSICNN_INPUT.nMels;
    const refTags = new Float64Array(50);
    const refVector = new Float64Array(1506);
    for (let p = 0; p < 2; p++) {
      const layers = forward(keras, units.data.subarray(p * size, (p + 1) * size));
      const tags = layers.get(keras.outputs[0]!)!.data;
      // The lane's vector: the batch-normalised pooling layer, the embedding layer's input.
      layers.get('bn_flatpool')!.data.forEach((x, i) => (refVector[i]! += x / 2));
      for (let i = 0; i < 50; i++) refTags[i]! += tags[i]! / 2;
    }
    const ours = await embedder.embedClip(clip);
    const tagDiff = Math.max(...Array.from(ours.tags, (v, i) => Math.abs(v - refTags[i]!)));
    const scale = Math.max(...Array.from(refVector, Math.abs));
    const vecDiff = Math.max(...Array.from(ours.vector, (v, i) => Math.abs(v - refVector[i]!)));
    assert.ok(tagDiff <= 1e-3, `${track.name}: tags differ by ${tagDiff}`);
    assert.ok(vecDiff <= 1e-3 * scale, `${track.name}: vector differs by ${vecDiff} (scale ${scale})`);
    const top = topTags(ours.tags);
    process.stdout.write(
      `# ${track.name}: ${top} (tags within ${tagDiff.toExponential(1)}, vector within ${(vecDiff / scale).toExponential(1)} of its scale)\n`,
    );
  }
});

test("bench:vibe's analysis model: its layer statistics match the plain forward pass, its vector is the 200-d embedding, its tags are the lane's", async () => {
  const keras = readKerasH5(await readFile(H5));
  const dense = keras.weights.get('dense')!;
  const benchModels = path.join(dataDir, 'bench-models');
  const layered = await openLayerEmbedder(config, benchModels);
  try {
    const sha = createHash('sha256')
      .update(await readFile(H5))
      .digest('hex');
    assert.equal(await layerModelOnnx(H5, benchModels), path.join(benchModels, `musicnn-msd-layer-stats-${sha}.onnx`));
    const [track] = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
    const clip = (await decodeFile(track!.file)).subarray(30 * 16000, 34.5 * 16000);
    const units = musicnnPatches(clip);
    const size = MUSICNN_INPUT.patchFrames * MUSICNN_INPUT.nMels;
    // The reference: time mean, deviation and maximum of the layer under the temporal pooling
    // (frames x 753), then the dense layer after its ReLU, each averaged over the two patches.
    const ref: number[] = [];
    const refEmbedding = new Float64Array(200);
    for (let p = 0; p < units.starts.length; p++) {
      const layers = forward(keras, units.data.subarray(p * size, (p + 1) * size));
      const frames = layers.get('tf_op_layer_concat_1')!;
      const [t, c] = frames.shape as [number, number];
      const stats = new Float64Array(3 * c);
      for (let k = 0; k < c; k++) {
        let sum = 0;
        let sq = 0;
        let max = -Infinity;
        for (let f = 0; f < t; f++) {
          const x = frames.data[f * c + k]!;
          sum += x;
          sq += x * x;
          max = Math.max(max, x);
        }
        stats[k] = sum / t;
        stats[c + k] = Math.sqrt(Math.max(0, sq / t - (sum / t) ** 2));
        stats[2 * c + k] = max;
      }
      const row = [...stats, ...layers.get('dense')!.data];
      row.forEach((x, i) => (ref[i] = (ref[i] ?? 0) + x / units.starts.length));
      // MusiCNN's published embedding: the dense layer before its ReLU, from its input.
      const x = layers.get('dropout')!.data;
      for (let o = 0; o < 200; o++) {
        let sum = dense.get('bias')!.data[o]!;
        for (let i = 0; i < x.length; i++) sum += x[i]! * dense.get('kernel')!.data[i * 200 + o]!;
        refEmbedding[o]! += sum / units.starts.length;
      }
    }
    const ours = await layered.embedClip(clip);
    assert.equal(ours.layers.length, ref.length);
    const scale = Math.max(...ref.map(Math.abs));
    const diff = Math.max(...Array.from(ours.layers, (v, i) => Math.abs(v - ref[i]!)));
    assert.ok(diff <= 1e-3 * scale, `layer statistics differ by ${diff} (scale ${scale})`);
    const embScale = Math.max(...Array.from(refEmbedding, Math.abs));
    const embDiff = Math.max(...Array.from(ours.vector, (v, i) => Math.abs(v - refEmbedding[i]!)));
    assert.ok(embDiff <= 1e-3 * embScale, `embedding differs by ${embDiff} (scale ${embScale})`);
    const plain = await embedder.embedClip(clip);
    assert.equal(maxDiff(plain.tags, ours.tags), 0);
  } finally {
    await layered.close();
  }
});

test('a track gives 10 s chunks every 5 s, the last one ending with the track, and a track embedding', async () => {
  const [track] = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  const pcm = (await decodeFile(track!.file)).subarray(0, 27 * 16000);
  const { chunks, track: whole } = await embedder.embedTrack(pcm);
  assert.deepEqual(
    chunks.map((c) => [c.startSeconds, c.seconds]),
    [
      [0, 10],
      [5, 10],
      [10, 10],
      [15, 10],
      [17, 10],
    ],
  );
  for (const c of chunks) assert.deepEqual([c.vector.length, c.tags.length], [1506, 50]);
  // The first chunk holds the patches a 10 s clip of the same audio has.
  const first = await embedder.embedClip(pcm.subarray(0, 10 * 16000));
  assert.ok(maxDiff(first.vector, chunks[0]!.vector) < 1e-4);
  // The track embedding is the mean over all the track's patches, as for a clip of it.
  const clip = await embedder.embedClip(pcm);
  assert.ok(maxDiff(clip.vector, whole.vector) < 1e-4);
  assert.ok(maxDiff(whole.vector, chunks[0]!.vector) > 1e-2, 'chunks differ from the whole');
  // Shorter than a window: one chunk, as long as the track.
  const short = await embedder.embedTrack(pcm.subarray(0, 4 * 16000));
  assert.deepEqual(
    short.chunks.map((c) => [c.startSeconds, c.seconds]),
    [[0, 4]],
  );
});

test('concurrent requests are served by the pool, each with its own result', async () => {
  const tracks = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  const clips = await Promise.all(tracks.slice(0, 4).map(async (t) => (await decodeFile(t.file, { maxSeconds: 60 })).subarray(40 * 16000, 50 * 16000)));
  const alone: Embedding[] = [];
  for (const c of clips) alone.push(await embedder.embedClip(c));
  const together = await Promise.all(clips.map((c) => embedder.embedClip(c)));
  together.forEach((e, i) => assert.ok(maxDiff(e.vector, alone[i]!.vector) < 1e-5));
});

test('without a usable model the lane says which model and why, and never pretends', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vibe-none-'));
  try {
    const open = (o: Partial<Config>) => openEmbedder(loadConfig({}, { dataDir: dir, logLevel: 'silent', vibeThreads: 1, ...o }));
    const reason = async (o: Partial<Config>) => {
      const r = await open(o);
      assert.equal(r.embedder, undefined);
      return 'reason' in r ? r.reason : '';
    };
    assert.match(await reason({ vibeModel: 'off' }), /off/);
    assert.match(await reason({ vibeModel: 'musicnn', musicnnH5: undefined }), /MusiCNN.*AUDIO_IDENT_MUSICNN_H5/);
    assert.match(await reason({ vibeModel: 'musicnn', musicnnH5: path.join(dir, 'nope.h5') }), /MusiCNN.*missing/);
    const notH5 = path.join(dir, 'bad.h5');
    await writeFile(notH5, 'this is not an HDF5 file');
    assert.match(await reason({ vibeModel: 'musicnn', musicnnH5: notH5 }), /could not be prepared/);
    assert.match(await reason({ vibeModel: 'clap', clapOnnx: undefined }), /CLAP.*AUDIO_IDENT_CLAP_ONNX/);
    // No CLAP weights exist here: a file of the right name and sha256 that is no model.
    const fake = path.join(dir, 'clap.onnx');
    await writeFile(fake, 'not an onnx model');
    const sha = createHash('sha256').update('not an onnx model').digest('hex');
    assert.match(await reason({ vibeModel: 'clap', clapOnnx: path.join(dir, 'none.onnx'), clapSha256: sha }), /CLAP.*missing/);
    assert.match(await reason({ vibeModel: 'clap', clapOnnx: fake, clapSha256: undefined }), /AUDIO_IDENT_CLAP_SHA256 is required/);
    assert.match(await reason({ vibeModel: 'clap', clapOnnx: fake, clapSha256: '0'.repeat(64) }), /sha256/);
    assert.match(await reason({ vibeModel: 'clap', clapOnnx: fake, clapSha256: sha }), /clap-htsat-unfused failed to load/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function maxDiff(a: Float32Array, b: Float32Array): number {
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));
}

function topTags(tags: Float32Array): string {
  return Array.from(tags, (p, i) => [p, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, 4)
    .map(([p, i]) => `${MSD_TAGS[i]} ${p.toFixed(2)}`)
    .join(', ');
}
