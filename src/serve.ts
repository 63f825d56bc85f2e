// Runs the HTTP server (REST API and live listening) until SIGTERM or SIGINT, then stops
// accepting, closes listening sessions (1001), lets requests in flight finish, and closes the
// engine (its matching threads and stores).
import type { AddressInfo } from 'node:net';
import { serve as listen, type ServerType } from '@hono/node-server';
import type { Config } from './base/config.js';
import { AppError } from './base/errors.js';
import { log } from './base/log.js';
import type { Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Engine } from './engine/engine.js';
import { DEFAULT_LIMITS, type ListenLimits } from './listen/limits.js';
import { ListenService } from './listen/transport.js';
import { createApp } from './http/app.js';
import { Metrics } from './http/metrics.js';
import { trimWhenLoadFalls } from './base/memory.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface RunningServer {
  url: string;
  engine: Engine;
  listen: ListenService;
  close(): Promise<void>;
}

export async function startServer(config: Config, limits: Partial<ListenLimits> = {}): Promise<RunningServer> {
  const host = config.host;
  // Refused, not quietly rebound to loopback: a container bound that way is unreachable and nobody knows why.
  if (!config.apiKey && !LOOPBACK.has(host) && !config.allowOpen) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `HOST=${host} is reachable from other machines but AUDIO_IDENT_API_KEY is not set, so anyone could ingest and delete tracks: ` +
        'set AUDIO_IDENT_API_KEY (16 characters or more), or AUDIO_IDENT_ALLOW_OPEN=1 to serve it open anyway',
    );
  }
  const engine = await Engine.open(config, { vibe: true, matchThreads: config.matchThreads, scanIndex: true });
  const metrics = new Metrics();
  const app = createApp(engine, config, metrics);
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = listen({ fetch: app.fetch, hostname: host, port: config.port }, () => resolve(s));
    s.once('error', reject);
  });
  const listenService = new ListenService(
    engine,
    server as Server,
    { ...DEFAULT_LIMITS, maxSessions: config.maxSessions, maxSessionsPerAddress: config.maxSessionsPerAddress, ...limits },
    { trustProxy: config.trustProxy },
  );
  metrics.gauge('audio_ident_listen_sessions', 'Open live listening connections', () => listenService.stats().sessions);
  metrics.gauge('audio_ident_search_clips_in_threads', 'Search clips being decoded or matched in the matching threads', () =>
    engine.threadStats().clips.reduce((n, c) => n + c, 0),
  );
  const loop = watchEventLoop(metrics);
  const trimmer = trimWhenLoadFalls(() => listenService.stats().sessions + engine.threadStats().clips.reduce((n, c) => n + c, 0));
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const vibe = engine.vibeStatus();
  log.info('listening', {
    url,
    catalog: engine.databaseKind(),
    dataDir: config.dataDir,
    ingestAuth: config.apiKey ? 'api key' : LOOPBACK.has(host) ? 'none (localhost only)' : 'none (AUDIO_IDENT_ALLOW_OPEN=1)',
    vibe: vibe.on ? `${vibe.model} (${vibe.store})` : `off: ${vibe.reason}`,
  });
  let closing: Promise<void> | undefined;
  return {
    url,
    engine,
    listen: listenService,
    close: () =>
      (closing ??= (async () => {
        loop.stop();
        trimmer.stop();
        await listenService.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive connections would hold close() open; busy ones finish first.
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        });
        await engine.close();
      })()),
  };
}

// Event-loop delay over the last completed window, so that a scrape shows the present load.
const LOOP_WINDOW_MS = 10_000;
function watchEventLoop(metrics: Metrics): { stop(): void } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let last = { p50: 0, p99: 0, max: 0 };
  const timer = setInterval(() => {
    last = { p50: h.percentile(50) / 1e9, p99: h.percentile(99) / 1e9, max: h.max / 1e9 };
    h.reset();
  }, LOOP_WINDOW_MS);
  timer.unref();
  for (const q of ['p50', 'p99', 'max'] as const) {
    metrics.gauge(`audio_ident_event_loop_delay_${q}_seconds`, `Event-loop delay ${q} over the last ${LOOP_WINDOW_MS / 1000} s`, () => last[q]);
  }
  return {
    stop: () => {
      clearInterval(timer);
      h.disable();
    },
  };
}

/**
 * `audio-ident serve`: runs until a signal and resolves with the exit code. An error that
 * escapes every handler ends only the listening connection it came from, when it came from one;
 * otherwise the process's state is unknown, so it shuts down cleanly and exits 1 for its
 * supervisor to restart it.
 */
export async function serve(config: Config): Promise<number> {
  const s = await startServer(config);
  let code = 0;
  await new Promise<void>((resolve) => {
    const stop = (cause: { signal: string } | { error: string }) => {
      log.info('shutting down', cause);
      s.close().then(resolve, (e: unknown) => {
        log.error('shutdown failed', { error: String(e) });
        resolve();
      });
    };
    const lastResort = (e: unknown) => {
      if (s.listen.failCurrent(e)) return;
      log.error('uncaught error outside any session', { error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      code = 1;
      stop({ error: 'uncaught' });
    };
    process.on('uncaughtException', lastResort);
    process.on('unhandledRejection', lastResort);
    process.once('SIGTERM', () => stop({ signal: 'SIGTERM' }));
    process.once('SIGINT', () => stop({ signal: 'SIGINT' }));
  });
  return code;
}
