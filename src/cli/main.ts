#!/usr/bin/env node
// audio-ident command line: serve, ingest, identify, tracks, rebuild-index.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../base/config.js';
import { AppError, isAppError } from '../base/errors.js';
import { setLogLevel } from '../base/log.js';
import { decodeFile } from '../audio/decode.js';
import { MAX_QUERY_SECONDS } from '../exact/clip-match.js';
import { Engine } from '../engine/engine.js';
import { listAudioFiles } from '../engine/ingest.js';
import { rebuildIndex, rebuildVibe } from '../engine/rebuild.js';
import { exactMatch, trackInfo } from '../api/schemas.js';
import { serve } from '../serve.js';
import { ProgressBar } from './progress.js';

const USAGE = `usage:
  audio-ident serve    [--data-dir DIR]                  run the HTTP server (HOST, PORT from the environment)
  audio-ident ingest   [--data-dir DIR] PATH...          add audio files and folders (recursive)
  audio-ident identify [--data-dir DIR] [--json] FILE... name the catalog track each clip comes from
  audio-ident tracks list [--data-dir DIR] [--json]
  audio-ident tracks rm   [--data-dir DIR] ID
  audio-ident rebuild-index [--data-dir DIR] [--vibe]    re-fingerprint (--vibe: re-embed) every track from its stored original

--data-dir defaults to $AUDIO_IDENT_DATA_DIR, else ./data`;

const Args = z.object({
  command: z.enum(['serve', 'ingest', 'identify', 'tracks', 'rebuild-index', 'help']),
  positionals: z.array(z.string()),
  dataDir: z.string().min(1).optional(),
  json: z.boolean(),
  vibe: z.boolean(),
});

function parse(argv: string[]): z.infer<typeof Args> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      vibe: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command = 'help', ...rest] = values.help ? ['help'] : positionals;
  const r = Args.safeParse({ command, positionals: rest, dataDir: values['data-dir'], json: values.json, vibe: values.vibe });
  if (!r.success) throw new AppError('INVALID_ARGUMENT', `unknown command '${command}'\n${USAGE}`);
  return r.data;
}

const fmtTime = (s: number) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;

async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config = loadConfig(process.env, args.dataDir ? { dataDir: args.dataDir } : {});
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
        if (args.positionals.length === 0) throw new AppError('INVALID_ARGUMENT', `ingest needs at least one PATH\n${USAGE}`);
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
        if (args.positionals.length === 0) throw new AppError('INVALID_ARGUMENT', `identify needs at least one FILE\n${USAGE}`);
        let status = 0;
        for (const file of args.positionals) {
          try {
            const pcm = await decodeFile(file, { ffmpegPath: config.ffmpegPath, maxSeconds: MAX_QUERY_SECONDS });
            const matches = await engine.identify(pcm);
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
        throw new AppError('INVALID_ARGUMENT', `tracks needs 'list' or 'rm ID'\n${USAGE}`);
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
    if (isAppError(e)) process.stderr.write(`error: [${e.code}] ${e.message}\n`);
    else process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 2;
  },
);
