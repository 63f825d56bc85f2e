// The server under fuzzing: `audio-ident serve` as a child process on a throwaway data dir (the
// embedded catalog, no vibe model, an API key), its structured log kept in a file, and what can be
// read of it from outside: /metrics, and its file descriptors, threads and child processes in /proc.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** dist/tools/fuzz-server.js -> dist/src/cli/main.js */
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const START_TIMEOUT_MS = 90_000;
const TAIL_LINES = 200;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ServerProcess {
  /** Every server started and not yet exited, so that a fuzzer that fails leaves none behind. */
  private static readonly running = new Set<ServerProcess>();
  /** Set once the process has exited, with when. */
  exit: Exit | undefined;
  exitedAt = 0;
  readonly exited: Promise<Exit>;
  private readonly tail: string[] = [];
  /** Log lines that were not JSON (a crash's stack trace, or a library writing on its own). */
  unstructuredLines = 0;
  /** `internal error` lines: failures the server logged under a ref. */
  internalErrors = 0;
  /** The first line of each recent internal error's text, by its ref. */
  private readonly refs = new Map<string, string>();

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly dataDir: string,
    readonly apiKey: string,
    readonly logPath: string,
  ) {
    ServerProcess.running.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        ServerProcess.running.delete(this);
        this.exitedAt = Date.now();
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  static async stopAll(): Promise<void> {
    await Promise.all([...ServerProcess.running].map((s) => s.stop()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(workDir: string, name: string): Promise<ServerProcess> {
    const dataDir = await mkdtemp(path.join(workDir, `${name}-data-`));
    const apiKey = randomBytes(16).toString('hex');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL' && k !== 'QDRANT_URL'));
    const child = spawn(process.execPath, [MAIN, 'serve'], {
      env: {
        ...env,
        AUDIO_IDENT_DATA_DIR: dataDir,
        HOST: '127.0.0.1',
        PORT: '0',
        AUDIO_IDENT_VIBE_MODEL: 'off',
        AUDIO_IDENT_API_KEY: apiKey,
        AUDIO_IDENT_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const logPath = path.join(workDir, `${name}.log`);
    const logFile = createWriteStream(logPath);
    const lines = createInterface({ input: child.stderr! });
    const early: string[] = [];
    let server: ServerProcess | undefined;
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not say 'listening' within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      lines.on('line', (line) => {
        logFile.write(`${line}\n`);
        if (server) return server.onLine(line);
        early.push(line);
        try {
          const m = JSON.parse(line) as { msg?: string; url?: string };
          if (m.msg === 'listening' && m.url) {
            clearTimeout(timer);
            resolve(m.url);
          }
        } catch {
          // not JSON: kept in `early` for the error below
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited before listening (code ${code}, signal ${signal}):\n${early.slice(-30).join('\n')}`));
      });
    });
    server = new ServerProcess(child, url, dataDir, apiKey, logPath);
    for (const l of early) server.onLine(l);
    return server;
  }

  private onLine(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    let m: { msg?: string; ref?: string; error?: string };
    try {
      m = JSON.parse(line);
    } catch {
      this.unstructuredLines++;
      return;
    }
    if (m.msg !== 'internal error') return;
    this.internalErrors++;
    if (m.ref) this.refs.set(m.ref, (m.error ?? '').split('\n')[0]!);
    if (this.refs.size > 1000) this.refs.delete(this.refs.keys().next().value!);
  }

  /** What the server logged under an internal error's ref, if it has logged it yet. */
  internalError(ref: string): string | undefined {
    return this.refs.get(ref);
  }

  /** Recent internal errors, ref and first line. */
  loggedInternalErrors(): [string, string][] {
    return [...this.refs];
  }

  /** The last lines the server logged. */
  logTail(n = 40): string[] {
    return this.tail.slice(-n);
  }

  /**
   * What a crash said: the first line of the error Node printed, or of the one the server logged
   * as uncaught before shutting itself down, else how it exited.
   */
  crashSignature(): string {
    for (const l of [...this.tail].reverse()) {
      if (/^\w*Error\b/.test(l)) return l.trim();
      try {
        const m = JSON.parse(l) as { level?: string; msg?: string; error?: string };
        if (m.level === 'error' && /uncaught/.test(m.msg ?? '')) return `${m.msg}: ${(m.error ?? '').split('\n')[0]}`;
      } catch {
        // not JSON, and no error line: read on
      }
    }
    return `exit code ${this.exit?.code ?? '-'} signal ${this.exit?.signal ?? '-'}`;
  }

  /** The gauges and counters of /metrics, by name with labels. */
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^([^#\s][^\s]*)\s+(\S+)$/.exec(line);
      if (m) out.set(m[1]!, Number(m[2]));
    }
    return out;
  }

  fds(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  threads(): number {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))?.[1]);
  }

  /** Child processes of the server named ffmpeg, as "pid cmd". */
  ffmpegChildren(): string[] {
    const out: string[] = [];
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === this.pid && comm === 'ffmpeg') out.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`);
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  /** Files of this process in the temp dir (the embedded catalog's socket), for after it has exited. */
  tempFiles(): string[] {
    return readdirSync(os.tmpdir()).filter((n) => n.startsWith('audio-ident-') && n.includes(`-${this.pid}-`));
  }

  /** Files left in the upload staging folder. */
  uploads(): string[] {
    const dir = path.join(this.dataDir, 'uploads');
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with how it ended. */
  async stop(graceMs = 15_000): Promise<{ exit: Exit; graceful: boolean }> {
    if (this.exit) return { exit: this.exit, graceful: false };
    this.child.kill('SIGTERM');
    const timer = new Promise<undefined>((r) => setTimeout(() => r(undefined), graceMs));
    const exit = await Promise.race([this.exited, timer]);
    if (exit) return { exit, graceful: true };
    this.child.kill('SIGKILL');
    return { exit: await this.exited, graceful: false };
  }
}

export const tempWorkDir = () => mkdtemp(path.join(os.tmpdir(), 'audio-ident-fuzz-'));
