// The one place configuration is read from the environment. Everything else receives a Config.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const EnvSchema = z.object({
  AUDIO_IDENT_DATA_DIR: z.string().min(1).default('./data'),
  AUDIO_IDENT_CONCURRENCY: z.coerce.number().int().min(1).max(256).optional(),
  AUDIO_IDENT_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  FFMPEG_PATH: z.string().min(1).default('ffmpeg'),
});

export interface Config {
  dataDir: string;
  /** Parallel decodes during ingest. */
  concurrency: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  ffmpegPath: string;
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
    logLevel: overrides.logLevel ?? e.AUDIO_IDENT_LOG_LEVEL,
    ffmpegPath: overrides.ffmpegPath ?? e.FFMPEG_PATH,
  };
}
