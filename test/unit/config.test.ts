// loadConfig from a given environment: defaults, parsing, rejection, overrides.
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/base/config.js';

describe('loadConfig', () => {
  it('has defaults for an empty environment', () => {
    const c = loadConfig({});
    const cores = os.availableParallelism();
    assert.deepEqual(
      { ...c, musicnnH5: undefined },
      {
        dataDir: path.resolve('./data'),
        concurrency: cores,
        ingestBatchPostings: 1_000_000,
        logLevel: 'info',
        ffmpegPath: 'ffmpeg',
        databaseUrl: undefined,
        apiKey: undefined,
        host: '127.0.0.1',
        allowOpen: false,
        corsOrigins: [],
        rateLimitSearch: 0,
        rateLimitIngest: 0,
        port: 8000,
        maxTrackUploadBytes: 200 * 2 ** 20,
        maxSessions: 200,
        maxSessionsPerAddress: 20,
        trustProxy: false,
        matchThreads: cores,
        vibeModel: 'musicnn',
        musicnnH5: undefined, // found beside the checkout or not: not this test's business
        clapOnnx: undefined,
        clapSha256: undefined,
        vibeThreads: Math.max(1, cores - 1),
        qdrantUrl: undefined,
        qdrantApiKey: undefined,
        qdrantCollection: 'audio_embeddings',
      },
    );
  });

  it('parses every variable', () => {
    const c = loadConfig({
      AUDIO_IDENT_DATA_DIR: 'some/dir',
      AUDIO_IDENT_CONCURRENCY: '3',
      AUDIO_IDENT_LOG_LEVEL: 'warn',
      AUDIO_IDENT_API_KEY: 'k'.repeat(16),
      AUDIO_IDENT_INGEST_BATCH_POSTINGS: '5000',
      AUDIO_IDENT_MAX_SESSIONS: '7',
      AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS: '3',
      AUDIO_IDENT_TRUST_PROXY: '1',
      AUDIO_IDENT_ALLOW_OPEN: '1',
      AUDIO_IDENT_CORS_ORIGINS: 'https://a.example, http://localhost:5173',
      AUDIO_IDENT_RATE_LIMIT_SEARCH: '120',
      AUDIO_IDENT_RATE_LIMIT_INGEST: '10',
      AUDIO_IDENT_MATCH_THREADS: '2',
      AUDIO_IDENT_MAX_TRACK_UPLOAD_MB: '3',
      DATABASE_URL: 'postgresql://u:p@db:5432/x',
      FFMPEG_PATH: '/opt/ffmpeg',
      HOST: '0.0.0.0',
      PORT: '9001',
      AUDIO_IDENT_VIBE_MODEL: 'clap',
      AUDIO_IDENT_MUSICNN_H5: 'm/musicnn.h5',
      AUDIO_IDENT_CLAP_ONNX: 'm/clap.onnx',
      AUDIO_IDENT_CLAP_SHA256: 'AB'.repeat(32),
      AUDIO_IDENT_VIBE_THREADS: '4',
      QDRANT_URL: 'http://qdrant:6333',
      QDRANT_API_KEY: 'q',
      QDRANT_COLLECTION: 'my_vectors-2',
    });
    assert.deepEqual(c, {
      dataDir: path.resolve('some/dir'),
      concurrency: 3,
      ingestBatchPostings: 5000,
      logLevel: 'warn',
      ffmpegPath: '/opt/ffmpeg',
      databaseUrl: 'postgresql://u:p@db:5432/x',
      apiKey: 'k'.repeat(16),
      host: '0.0.0.0',
      allowOpen: true,
      corsOrigins: ['https://a.example', 'http://localhost:5173'],
      rateLimitSearch: 120,
      rateLimitIngest: 10,
      port: 9001,
      maxTrackUploadBytes: 3 * 2 ** 20,
      maxSessions: 7,
      maxSessionsPerAddress: 3,
      trustProxy: true,
      matchThreads: 2,
      vibeModel: 'clap',
      musicnnH5: path.resolve('m/musicnn.h5'),
      clapOnnx: path.resolve('m/clap.onnx'),
      clapSha256: 'ab'.repeat(32),
      vibeThreads: 4,
      qdrantUrl: 'http://qdrant:6333',
      qdrantApiKey: 'q',
      qdrantCollection: 'my_vectors-2',
    });
    assert.equal(loadConfig({ DATABASE_URL: 'postgres://h/db' }).databaseUrl, 'postgres://h/db');
    assert.equal(loadConfig({ AUDIO_IDENT_VIBE_MODEL: 'off' }).vibeModel, 'off');
  });

  it('rejects invalid values, naming the variable', () => {
    const bad: [string, string][] = [
      ['PORT', 'abc'],
      ['PORT', '65536'],
      ['PORT', '80.5'],
      ['AUDIO_IDENT_CONCURRENCY', '0'],
      ['AUDIO_IDENT_CONCURRENCY', '257'],
      ['AUDIO_IDENT_LOG_LEVEL', 'verbose'],
      ['AUDIO_IDENT_API_KEY', 'short'],
      ['AUDIO_IDENT_INGEST_BATCH_POSTINGS', '0'],
      ['AUDIO_IDENT_MAX_SESSIONS', '100001'],
      ['AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS', '0'],
      ['AUDIO_IDENT_TRUST_PROXY', 'yes'],
      ['AUDIO_IDENT_MATCH_THREADS', '-1'],
      ['AUDIO_IDENT_MAX_TRACK_UPLOAD_MB', '4097'],
      ['DATABASE_URL', 'mysql://h/db'],
      ['FFMPEG_PATH', ''],
      ['AUDIO_IDENT_VIBE_MODEL', 'openl3'],
      ['AUDIO_IDENT_CLAP_SHA256', 'ab'.repeat(31)],
      ['AUDIO_IDENT_CLAP_SHA256', 'zz'.repeat(32)],
      ['AUDIO_IDENT_VIBE_THREADS', 'many'],
      ['QDRANT_URL', 'not a url'],
      ['QDRANT_COLLECTION', 'has space'],
      ['AUDIO_IDENT_CORS_ORIGINS', 'a.example'],
      ['AUDIO_IDENT_RATE_LIMIT_SEARCH', '-1'],
    ];
    for (const [name, value] of bad) {
      assert.throws(() => loadConfig({ [name]: value }), { message: new RegExp(`^invalid environment: ${name}: `) }, `${name}=${value}`);
    }
  });

  it('.env.example names every variable the configuration reads', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    const source = readFileSync(path.join(root, 'src', 'base', 'config.ts'), 'utf8');
    const read = [...source.matchAll(/^ {2}([A-Z][A-Z0-9_]+): z/gm)].map((m) => m[1]!);
    assert.ok(read.length > 20);
    assert.deepEqual(
      read.filter((v) => !new RegExp(`^#? ?${v}=`, 'm').test(example)),
      [],
    );
  });

  it('lets overrides win, including an explicit undefined', () => {
    const env = { PORT: '9001', DATABASE_URL: 'postgres://h/db', AUDIO_IDENT_API_KEY: 'k'.repeat(16), AUDIO_IDENT_DATA_DIR: 'a' };
    const c = loadConfig(env, { port: 0, databaseUrl: undefined, dataDir: 'b' });
    assert.equal(c.port, 0);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.dataDir, path.resolve('b'));
    assert.equal(c.apiKey, 'k'.repeat(16)); // not overridden
  });
});
