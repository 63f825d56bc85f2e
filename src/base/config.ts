// The one place configuration is read from the environment. Everything else receives a Config.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const EnvSchema = z.object({
  AUDIO_IDENT_DATA_DIR: z.string().min(1).default('./data'),
  AUDIO_IDENT_CONCURRENCY: z.coerce.number().int().min(1).max(256).optional(),
  AUDIO_IDENT_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  AUDIO_IDENT_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  AUDIO_IDENT_INGEST_BATCH_POSTINGS: z.coerce.number().int().min(1).default(1_000_000),
  AUDIO_IDENT_MAX_SESSIONS: z.coerce.number().int().min(1).max(100000).default(200),
  AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS: z.coerce.number().int().min(1).max(100000).default(20),
  AUDIO_IDENT_TRUST_PROXY: z.enum(['0', '1']).default('0'),
  AUDIO_IDENT_ALLOW_OPEN: z.enum(['0', '1']).default('0'),
  AUDIO_IDENT_CORS_ORIGINS: z
    .string()
    .regex(/^\s*(\*|https?:\/\/[^\s,]+(\s*,\s*https?:\/\/[^\s,]+)*)\s*$/, "'*' or a comma-separated list of http(s) origins")
    .optional(),
  AUDIO_IDENT_RATE_LIMIT_SEARCH: z.coerce.number().int().min(0).max(1_000_000).default(0),
  AUDIO_IDENT_RATE_LIMIT_INGEST: z.coerce.number().int().min(0).max(1_000_000).default(0),
  AUDIO_IDENT_MATCH_THREADS: z.coerce.number().int().min(1).max(256).optional(),
  AUDIO_IDENT_MAX_TRACK_UPLOAD_MB: z.coerce.number().int().min(1).max(4096).default(200),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  FFMPEG_PATH: z.string().min(1).default('ffmpeg'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  AUDIO_IDENT_VIBE_MODEL: z.enum(['musicnn', 'clap', 'off']).default('musicnn'),
  AUDIO_IDENT_MUSICNN_H5: z.string().min(1).optional(),
  AUDIO_IDENT_CLAP_ONNX: z.string().min(1).optional(),
  AUDIO_IDENT_CLAP_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .optional(),
  AUDIO_IDENT_VIBE_THREADS: z.coerce.number().int().min(1).max(256).optional(),
  QDRANT_URL: z.string().url().optional(),
  QDRANT_API_KEY: z.string().min(1).optional(),
  QDRANT_COLLECTION: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,255}$/, 'letters, digits, _ and - only')
    .default('audio_embeddings'),
});

/** The shared MusiCNN weights beside a checkout (dist/src/base/config.js -> repository root -> ..). */
const sharedMusicnn = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'shared', 'models', 'musicnn', 'MSD_musicnn.h5');

export interface Config {
  dataDir: string;
  /** Threads that decode and fingerprint catalog files (ingest, rebuild-index). */
  concurrency: number;
  /**
   * Postings per ingest commit: each commit rewrites every index key it touches, so larger
   * batches write less in all, at the cost of memory and of work lost to a crash.
   */
  ingestBatchPostings: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  ffmpegPath: string;
  /** PostgreSQL server of the catalog; undefined: the embedded one under the data dir. */
  databaseUrl: string | undefined;
  /** Key that ingestion endpoints require; undefined: only a loopback HOST, unless allowOpen. */
  apiKey: string | undefined;
  host: string;
  /** Origins whose pages may call the API from a browser ('*': any); empty: none but our own. */
  corsOrigins: string[];
  /** Search and ingest requests a minute per client address; 0: no limit. */
  rateLimitSearch: number;
  rateLimitIngest: number;
  /** Serve a non-loopback HOST without an API key (anyone who reaches it may ingest and delete). */
  allowOpen: boolean;
  port: number;
  /** Largest track upload (search clips have their own fixed limit). */
  maxTrackUploadBytes: number;
  /** Concurrent live listening sessions; more are refused with 1013 (try again later). */
  maxSessions: number;
  /** Concurrent live listening sessions from one client address; more are refused with 4430. */
  maxSessionsPerAddress: number;
  /** Behind a reverse proxy: a client's address is the last X-Forwarded-For entry. */
  trustProxy: boolean;
  /** Worker threads that decode, fingerprint and match live sessions and uploaded clips. */
  matchThreads: number;
  /** Which model the vibe lane runs; 'off' disables it. */
  vibeModel: 'musicnn' | 'clap' | 'off';
  /** MusiCNN (MSD) Keras HDF5 weights; undefined: none found, the lane says so. */
  musicnnH5: string | undefined;
  /** CLAP audio-encoder ONNX file and the sha256 it must have (checked on load). */
  clapOnnx: string | undefined;
  clapSha256: string | undefined;
  /** Worker threads of the embedding pool, each with a single-threaded onnxruntime session. */
  vibeThreads: number;
  /** Qdrant for the vibe lane's vectors; undefined: the embedded index under the data dir. */
  qdrantUrl: string | undefined;
  qdrantApiKey: string | undefined;
  qdrantCollection: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid environment: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  const e = parsed.data;
  return {
    dataDir: path.resolve(overrides.dataDir ?? e.AUDIO_IDENT_DATA_DIR),
    concurrency: overrides.concurrency ?? e.AUDIO_IDENT_CONCURRENCY ?? os.availableParallelism(),
    ingestBatchPostings: overrides.ingestBatchPostings ?? e.AUDIO_IDENT_INGEST_BATCH_POSTINGS,
    logLevel: overrides.logLevel ?? e.AUDIO_IDENT_LOG_LEVEL,
    ffmpegPath: overrides.ffmpegPath ?? e.FFMPEG_PATH,
    databaseUrl: 'databaseUrl' in overrides ? overrides.databaseUrl : e.DATABASE_URL,
    apiKey: 'apiKey' in overrides ? overrides.apiKey : e.AUDIO_IDENT_API_KEY,
    host: overrides.host ?? e.HOST,
    allowOpen: overrides.allowOpen ?? e.AUDIO_IDENT_ALLOW_OPEN === '1',
    corsOrigins: overrides.corsOrigins ?? e.AUDIO_IDENT_CORS_ORIGINS?.split(',').map((o) => o.trim()) ?? [],
    rateLimitSearch: overrides.rateLimitSearch ?? e.AUDIO_IDENT_RATE_LIMIT_SEARCH,
    rateLimitIngest: overrides.rateLimitIngest ?? e.AUDIO_IDENT_RATE_LIMIT_INGEST,
    port: overrides.port ?? e.PORT,
    maxTrackUploadBytes: overrides.maxTrackUploadBytes ?? e.AUDIO_IDENT_MAX_TRACK_UPLOAD_MB * 2 ** 20,
    maxSessions: overrides.maxSessions ?? e.AUDIO_IDENT_MAX_SESSIONS,
    maxSessionsPerAddress: overrides.maxSessionsPerAddress ?? e.AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS,
    trustProxy: overrides.trustProxy ?? e.AUDIO_IDENT_TRUST_PROXY === '1',
    matchThreads: overrides.matchThreads ?? e.AUDIO_IDENT_MATCH_THREADS ?? os.availableParallelism(),
    vibeModel: overrides.vibeModel ?? e.AUDIO_IDENT_VIBE_MODEL,
    musicnnH5:
      'musicnnH5' in overrides
        ? overrides.musicnnH5
        : e.AUDIO_IDENT_MUSICNN_H5 !== undefined
          ? path.resolve(e.AUDIO_IDENT_MUSICNN_H5)
          : existsSync(sharedMusicnn)
            ? sharedMusicnn
            : undefined,
    clapOnnx: 'clapOnnx' in overrides ? overrides.clapOnnx : e.AUDIO_IDENT_CLAP_ONNX && path.resolve(e.AUDIO_IDENT_CLAP_ONNX),
    clapSha256: 'clapSha256' in overrides ? overrides.clapSha256 : e.AUDIO_IDENT_CLAP_SHA256?.toLowerCase(),
    // One core is left to the event loop, ffmpeg and the fingerprinting (bench/embed.ts measures).
    vibeThreads: overrides.vibeThreads ?? e.AUDIO_IDENT_VIBE_THREADS ?? Math.max(1, os.availableParallelism() - 1),
    qdrantUrl: 'qdrantUrl' in overrides ? overrides.qdrantUrl : e.QDRANT_URL,
    qdrantApiKey: 'qdrantApiKey' in overrides ? overrides.qdrantApiKey : e.QDRANT_API_KEY,
    qdrantCollection: overrides.qdrantCollection ?? e.QDRANT_COLLECTION,
  };
}
