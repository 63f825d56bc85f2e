// Probes: /livez (the process answers), /readyz (it can identify: the catalog answers and the
// fingerprint index reads and agrees with it), /health (every part, the optional ones too).
import { spawn } from 'node:child_process';
import { createRoute, type OpenAPIHono, type z } from '@hono/zod-openapi';
import type { Config } from '../base/config.js';
import { AppError, publicError } from '../base/errors.js';
import type { Engine } from '../engine/engine.js';
import * as S from '../api/schemas.js';

const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });

export function registerProbes(app: OpenAPIHono, engine: Engine, config: Config): void {
  const ok = (what: Promise<string>) =>
    what.then(
      (v) => `ok${v ? ` (${v})` : ''}`,
      (e: unknown) => `error: ${publicError(e, { during: 'health check' }).message}`,
    );
  const required = () => ({
    catalog: ok(engine.ping().then(() => '')),
    index: ok(engine.checkIndex().then((n) => `${n} tracks`)),
  });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/livez',
      operationId: 'livez',
      tags: ['operations'],
      summary: 'Liveness: the process answers',
      responses: { 200: json(S.Liveness, 'Alive') },
    }),
    (c) => c.json({ status: 'ok' as const }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/readyz',
      operationId: 'readyz',
      tags: ['operations'],
      summary: 'Readiness: the catalog answers and the fingerprint index reads and agrees with it',
      responses: { 200: json(S.Readiness, 'Ready'), 503: json(S.Readiness, 'Not ready, with the reason') },
    }),
    async (c) => {
      const r = required();
      const checks = { catalog: await r.catalog, index: await r.index };
      const ready = Object.values(checks).every((v) => v.startsWith('ok'));
      return c.json({ status: ready ? ('ok' as const) : ('not_ready' as const), checks }, ready ? 200 : 503);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      operationId: 'health',
      tags: ['operations'],
      summary: 'Every part: the catalog, the index, ffmpeg and the vibe lane',
      responses: { 200: json(S.Health, 'All good'), 503: json(S.Health, 'Something is down') },
    }),
    async (c) => {
      const r = required();
      // The vibe lane is optional: off is reported, not a failure; an unreachable store is.
      const lane = engine.vibeStatus();
      const vibe = lane.on ? ok(engine.vectorCount().then((n) => `${lane.model}, ${lane.store}, ${n.track} tracks`)) : Promise.resolve(`off (${lane.reason})`);
      const checks = { catalog: await r.catalog, index: await r.index, ffmpeg: await ok(ffmpegVersion(config.ffmpegPath)), vibe: await vibe };
      const healthy = Object.values(checks).every((v) => !v.startsWith('error'));
      return c.json({ status: healthy ? ('ok' as const) : ('degraded' as const), checks }, healthy ? 200 : 503);
    },
  );
}

let ffmpegSeen: Promise<string> | undefined;
function ffmpegVersion(ffmpegPath: string): Promise<string> {
  // Once found, ffmpeg stays: a failed probe is retried on the next health check.
  ffmpegSeen ??= new Promise<string>((resolve, reject) => {
    const p = spawn(ffmpegPath, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', () => reject(new AppError('DECODE_FAILED', `cannot run ${ffmpegPath}`)));
    p.on('close', (code) =>
      code === 0
        ? resolve(/ffmpeg version (\S+)/.exec(out)?.[1] ?? 'unknown')
        : reject(new AppError('DECODE_FAILED', `${ffmpegPath} -version exited with ${code}`)),
    );
  }).catch((e) => {
    ffmpegSeen = undefined;
    throw e;
  });
  return ffmpegSeen;
}
