#!/usr/bin/env node
// audio-ident command line: serve, ingest, identify, tracks, rebuild-index.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { z } from 'zod';
import { createRequire } from 'node:module';
import { type Config, loadConfig } from '../base/config.js';
import { isAppError } from '../base/errors.js';
import { setLogLevel } from '../base/log.js';
import { decodeFile } from '../audio/decode.js';
import { MAX_QUERY_SECONDS } from '../exact/clip-match.js';
import { Engine } from '../engine/engine.js';
import { listAudioFiles } from '../engine/ingest.js';
import { rebuildIndex, rebuildVibe } from '../engine/rebuild.js';
import { exactMatch, trackInfo } from '../api/schemas.js';
import { serve } from '../serve.js';
import { ProgressBar } from './progress.js';

const VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

const COMMON_ENV = ['AUDIO_IDENT_DATA_DIR', 'DATABASE_URL', 'FFMPEG_PATH', 'AUDIO_IDENT_LOG_LEVEL'];
const VIBE_ENV = ['AUDIO_IDENT_VIBE_MODEL', 'AUDIO_IDENT_MUSICNN_H5', 'AUDIO_IDENT_CLAP_ONNX', 'AUDIO_IDENT_CLAP_SHA256', 'AUDIO_IDENT_VIBE_THREADS'];
const QDRANT_ENV = ['QDRANT_URL', 'QDRANT_API_KEY', 'QDRANT_COLLECTION'];
/** Each command's usage line, what it does, the least positionals it needs and the environment it reads. */
const COMMANDS = {
  serve: {
    usage: 'serve [--data-dir DIR]',
    does: 'run the HTTP server: REST API, live listening and the web client',
    needs: 0,
    env: [
      'HOST',
      'PORT',
      'AUDIO_IDENT_API_KEY',
      'AUDIO_IDENT_ALLOW_OPEN',
      'AUDIO_IDENT_CORS_ORIGINS',
      'AUDIO_IDENT_RATE_LIMIT_SEARCH',
      'AUDIO_IDENT_RATE_LIMIT_INGEST',
      'AUDIO_IDENT_MAX_SESSIONS',
      'AUDIO_IDENT_MAX_SESSIONS_PER_ADDRESS',
      'AUDIO_IDENT_TRUST_PROXY',
      'AUDIO_IDENT_MATCH_THREADS',
      'AUDIO_IDENT_MAX_TRACK_UPLOAD_MB',
      'AUDIO_IDENT_CONCURRENCY',
      ...VIBE_ENV,
      ...QDRANT_ENV,
    ],
  },
  ingest: {
    usage: 'ingest [--data-dir DIR] PATH...',
    does: 'add audio files and folders (recursive) to the catalog',
    needs: 1,
    env: ['AUDIO_IDENT_CONCURRENCY', 'AUDIO_IDENT_INGEST_BATCH_POSTINGS', ...VIBE_ENV, ...QDRANT_ENV],
  },
  identify: {
    usage: 'identify [--data-dir DIR] [--json] FILE...',
    does: 'name the catalog track each clip comes from (its first 30 s); exit 1 when one has no match or fails',
    needs: 1,
    env: [],
  },
  tracks: {
    usage: "tracks list [--json] | tracks rm ID | tracks set ID [--title T] [--artist A] [--album B] ('' clears)",
    does: "list the catalog, delete a track, or correct a track's metadata (each with [--data-dir DIR])",
    needs: 1,
    env: QDRANT_ENV,
  },
  'rebuild-index': {
    usage: 'rebuild-index [--data-dir DIR] [--vibe]',
    does: 're-fingerprint (--vibe: re-embed) every track from its stored original',
    needs: 0,
    env: ['AUDIO_IDENT_CONCURRENCY', ...VIBE_ENV, ...QDRANT_ENV],
  },
} as const;
type Command = keyof typeof COMMANDS;

const USAGE = `usage: audio-ident COMMAND [options]   (audio-ident COMMAND --help for its environment)
${Object.values(COMMANDS)
  .map((c) => `  audio-ident ${c.usage}\n      ${c.does}`)
  .join('\n')}
  audio-ident --version

--data-dir defaults to $AUDIO_IDENT_DATA_DIR, else ./data.
Exit codes: 0 done, 1 failed (or, for identify, no match), 2 bad usage or configuration.`;

const commandUsage = (c: Command) =>
  `usage: audio-ident ${COMMANDS[c].usage}\n  ${COMMANDS[c].does}\nenvironment: ${[...COMMON_ENV, ...COMMANDS[c].env].join(', ')}`;

/** A mistake in how the CLI was called (exit 2), as opposed to a failure while it ran (exit 1). */
class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

const Args = z.object({
  command: z.enum([...(Object.keys(COMMANDS) as Command[]), 'help', 'version']),
  positionals: z.array(z.string()),
  dataDir: z.string().min(1, '--data-dir needs a folder').optional(),
  json: z.boolean(),
  vibe: z.boolean(),
  help: z.boolean(),
  /** tracks set: what to correct; '' clears artist or album. */
  metadata: z.object({ title: z.string().trim().min(1, '--title must not be empty').optional(), artist: z.string().optional(), album: z.string().optional() }),
});
type Args = z.infer<typeof Args>;

function parse(argv: string[]): Args {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; args: string[] }>>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (e) {
    // node:util's parse errors name the option; its hint about '--' is for another kind of CLI.
    throw new UsageError((e as Error).message.split('. To specify')[0]!, USAGE);
  }
  const { values, positionals } = parsed;
  const [command = 'help', ...rest] = values.version ? ['version'] : positionals;
  const metadata = { title: values.title, artist: values.artist, album: values.album };
  const r = Args.safeParse({ command, positionals: rest, dataDir: values['data-dir'], json: values.json, vibe: values.vibe, help: values.help, metadata });
  if (!r.success) {
    const unknown = r.error.issues.some((i) => i.path[0] === 'command');
    throw new UsageError(unknown ? `unknown command '${command}'` : (r.error.issues[0]?.message ?? 'bad arguments'), USAGE);
  }
  const args = r.data;
  if (args.command === 'help' || args.command === 'version' || args.help) return args;
  const [sub, id] = args.positionals;
  const correction = Object.values(args.metadata).some((v) => v !== undefined);
  const tracksOk = sub === 'list' || (sub === 'rm' && id) || (sub === 'set' && id && correction);
  if (args.command === 'tracks' ? !tracksOk : args.positionals.length < COMMANDS[args.command].needs) {
    throw new UsageError(
      `${args.command} needs ${args.command === 'tracks' ? "'list', 'rm ID' or 'set ID' with --title, --artist or --album" : COMMANDS[args.command].usage.split(' ').at(-1)}`,
      commandUsage(args.command),
    );
  }
  return args;
}

const OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  vibe: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'V', default: false },
  title: { type: 'string' },
  artist: { type: 'string' },
  album: { type: 'string' },
} as const;

const fmtTime = (s: number) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;

async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args.command === 'version') {
    process.stdout.write(`audio-ident ${VERSION}\n`);
    return 0;
  }
  if (args.command === 'help' || args.help) {
    process.stdout.write(`${args.command === 'help' ? USAGE : commandUsage(args.command)}\n`);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig(process.env, args.dataDir ? { dataDir: args.dataDir } : {});
  } catch (e) {
    throw new UsageError((e as Error).message, commandUsage(args.command));
  }
  setLogLevel(config.logLevel);
  if (args.command === 'serve') {
    return serve(config);
  }
  if (args.command === 'rebuild-index' && args.vibe) {
    const bar = new ProgressBar('re-embed');
    const r = await rebuildVibe(config, (done, total) => bar.update(done, total, 'tracks'));
    process.stdout.write(
      `re-embedded ${r.tracks} track(s) with ${r.model}, ${(r.audioSeconds / 3600).toFixed(2)} h of audio, ` +
        `${r.vectors} vectors, in ${r.elapsedSeconds.toFixed(1)} s\n`,
    );
    return 0;
  }
  if (args.command === 'rebuild-index') {
    const bar = new ProgressBar('rebuild');
    const r = await rebuildIndex(config, (done, total) => bar.update(done, total, 'tracks'));
    process.stdout.write(`rebuilt the index of ${r.tracks} track(s), ${(r.audioSeconds / 3600).toFixed(2)} h of audio, in ${r.elapsedSeconds.toFixed(1)} s\n`);
    return 0;
  }
  // Ingest embeds new tracks; the other commands need no model.
  const engine = await Engine.open(config, { vibe: args.command === 'ingest' });
  try {
    switch (args.command) {
      case 'ingest': {
        const files = await listAudioFiles(args.positionals);
        const bar = new ProgressBar('ingest');
        const summary = await engine.ingest(files, (p) =>
          bar.update(p.done, p.total, `${(p.audioSeconds / 3600).toFixed(2)} h audio${p.failed ? `, ${p.failed} failed` : ''}`),
        );
        for (const o of summary.outcomes) {
          if (o.status === 'failed') process.stderr.write(`failed: ${o.file}: [${o.code}] ${o.message}\n`);
          else if (o.status === 'duplicate' && o.reason === 'same_recording') {
            process.stderr.write(`duplicate: ${o.file} is the same recording as ${o.track.file_name} [${o.track.id}]\n`);
          }
        }
        const st = engine.stats();
        process.stdout.write(
          `ingested ${summary.created} new track(s), skipped ${summary.skipped} already ingested, ${summary.failed} failed\n` +
            (summary.sameRecording ? `${summary.sameRecording} file(s) not added: another copy of a catalog recording\n` : '') +
            `${(summary.audioSeconds / 3600).toFixed(2)} h of new audio in ${summary.elapsedSeconds.toFixed(1)} s ` +
            `(${(summary.audioSeconds / Math.max(summary.elapsedSeconds, 1e-9)).toFixed(0)}x real time)\n` +
            `catalog: ${st.tracks} track(s), index ${(st.bytes / 2 ** 20).toFixed(1)} MB (${st.postings} postings)\n`,
        );
        return summary.failed > 0 ? 1 : 0;
      }
      case 'identify': {
        let status = 0;
        for (const file of args.positionals) {
          try {
            const pcm = await decodeFile(file, { ffmpegPath: config.ffmpegPath, maxSeconds: MAX_QUERY_SECONDS });
            const matches = await engine.identify(pcm);
            if (matches.length === 0) status = 1;
            if (args.json) {
              process.stdout.write(`${JSON.stringify({ file, matches: matches.map(exactMatch) })}\n`);
            } else if (matches.length === 0) {
              process.stdout.write(`${file}: no match\n`);
            } else {
              for (const m of matches) {
                const t = m.track;
                process.stdout.write(
                  `${file}: ${t.title}${t.artist ? ` - ${t.artist}` : ''}${t.album ? ` (${t.album})` : ''} ` +
                    `at ${fmtTime(m.offsetSeconds)}, confidence ${m.confidence.toFixed(2)}, ${m.alignedHashes} aligned hashes [${t.id}]\n`,
                );
              }
            }
          } catch (e) {
            if (!isAppError(e)) throw e;
            status = 1;
            if (args.json) process.stdout.write(`${JSON.stringify({ file, error: { code: e.code, message: e.message } })}\n`);
            else process.stderr.write(`${file}: [${e.code}] ${e.message}\n`);
          }
        }
        return status;
      }
      case 'tracks': {
        const [sub, id] = args.positionals;
        if (sub === 'list') {
          const { tracks } = await engine.listTracks();
          if (args.json) process.stdout.write(`${JSON.stringify({ tracks: tracks.map(trackInfo) })}\n`);
          else
            for (const t of tracks)
              process.stdout.write(`${t.id}  ${fmtTime(t.duration_seconds).padStart(7)}  ${t.title}${t.artist ? ` - ${t.artist}` : ''}  (${t.file_name})\n`);
          return 0;
        }
        if (sub === 'rm' && id) {
          const t = await engine.removeTrack(id);
          process.stdout.write(`removed ${t.id} (${path.basename(t.file_name)})\n`);
          return 0;
        }
        // parse() let only 'set ID' with a correction through
        const { title, artist, album } = args.metadata;
        const t = await engine.updateTrack(id!, { title, artist: artist === '' ? null : artist, album: album === '' ? null : album });
        if (args.json) process.stdout.write(`${JSON.stringify(trackInfo(t))}\n`);
        else process.stdout.write(`${t.id}  ${t.title}${t.artist ? ` - ${t.artist}` : ''}${t.album ? ` (${t.album})` : ''}\n`);
        return 0;
      }
    }
  } finally {
    await engine.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`audio-ident: ${e.message}\n${e.usage}\n`);
      process.exitCode = 2;
      return;
    }
    // One line; the stack only when asked for, since it helps us and not the user.
    if (isAppError(e)) process.stderr.write(`error: [${e.code}] ${e.message}\n`);
    else
      process.stderr.write(`error: ${process.env.AUDIO_IDENT_LOG_LEVEL === 'debug' ? ((e as Error).stack ?? String(e)) : String((e as Error).message ?? e)}\n`);
    process.exitCode = 1;
  },
);
