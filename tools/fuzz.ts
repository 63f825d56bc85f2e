#!/usr/bin/env node
// A bounded fuzzer of the server's two input edges: the listening protocol (WebSocket
// /api/v1/listen) and the REST uploads and lookups. It starts a real `audio-ident serve` as a child
// process, ingests two generated tracks, then for the budget runs cases drawn from a seeded PRNG
// (case i of a seed is always the same case) and judges each by the documentation. Afterwards it
// checks that nothing leaked: sessions, clips in the matching threads, file descriptors, threads,
// staged uploads, ffmpeg children. A crash restarts the server and names the case that caused it
// (that time is added to the budget). Exit 1 on any failure, each printed and saved as a JSON
// seed (--save DIR, else a folder in the temp dir that the log names); 2 when it cannot run.
//
//   node dist/tools/fuzz.js [--seconds 60] [--seed N] [--workers 6] [--save DIR]
//   node dist/tools/fuzz.js --replay SEED.json...     (the saved cases, on a fresh server)
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { log } from '../src/base/log.js';
import { audioRef, type AudioSet, makeAudioSet, TRACKS } from './fuzz-audio.js';
import { FAMILIES, type FuzzCase, generate, type ListenCase, type Resources, type SeedFile } from './fuzz-cases.js';
import { check, type Failure, type Outcome, replay, summarize } from './fuzz-replay.js';
import { ServerProcess, tempWorkDir } from './fuzz-server.js';

/** How long a connection may stay open after a case's last step: the idle limit (10 s), or the drain after stop (30 s), and some. */
const CASE_DEADLINE_MS = 35_000;
/** After the last client: how long the server may take to let go of everything. */
const SETTLE_MS = 20_000;
/** Descriptors and threads the server may hold beyond its count after the warm-up (a pool that grew by a worker, a log file). */
const FD_MARGIN = 8;
const THREAD_MARGIN = 4;
/** Crashes after which the run stops (each costs a restart and a replay of its suspects). */
const MAX_CRASHES = 5;

interface Instance {
  server: ServerProcess;
  res: Resources;
  baseline: { fds: number; threads: number };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a server, ingests the generated tracks through the API, warms every path up once, and counts its descriptors and threads. */
async function boot(workDir: string, audio: AudioSet, n: number): Promise<Instance> {
  const server = await ServerProcess.start(workDir, `server-${n}`);
  try {
    const form = new FormData();
    for (let t = 0; t < TRACKS; t++) form.append('file', new Blob([new Uint8Array(audio.get(audioRef('wav', t))!)]), `fuzz-track-${t}.wav`);
    const r = await fetch(`${server.url}/api/v1/tracks`, { method: 'POST', body: form, headers: { authorization: `Bearer ${server.apiKey}` } });
    const body = (await r.json()) as { tracks?: { status: string; track?: { id: string } }[] };
    const trackIds = (body.tracks ?? []).map((t) => t.track?.id ?? '');
    if (r.status !== 201 || trackIds.length !== TRACKS || trackIds.some((id) => !id))
      throw new Error(`ingest of the generated tracks: ${r.status} ${JSON.stringify(body)}`);
    const res: Resources = { audio, apiKey: server.apiKey, trackIds };
    // A search and a session first, so that pools, codecs and caches that start on first use are counted in the baseline.
    const search = new FormData();
    search.append('audio', new Blob([new Uint8Array(audio.get(audioRef('mp3', 0))!)]), 'warm-up.mp3');
    search.append('mode', 'exact');
    const s = await fetch(`${server.url}/api/v1/search`, { method: 'POST', body: search });
    const found = ((await s.json()) as { exact_matches?: { track: { id: string } }[] }).exact_matches?.[0]?.track.id;
    const warm: ListenCase = {
      kind: 'listen',
      family: 'warm-up',
      steps: [
        { op: 'text', data: [{ text: '{"type":"start","format":"webm-opus"}' }] },
        { op: 'binary', data: [{ audio: audioRef('webm', 1), from: 0, to: 12_000 }] },
        { op: 'text', data: [{ text: '{"type":"stop"}' }] },
      ],
    };
    const o = await replay(warm, { url: server.url, res, deadlineMs: CASE_DEADLINE_MS });
    log.info('fuzz server ready', {
      url: server.url,
      pid: server.pid,
      log: server.logPath,
      warmUpSearch: `${s.status}${found === trackIds[0] ? ', matched' : ', no match'}`,
      warmUpSession: summarize(o).close,
    });
    await settled(server);
    return { server, res, baseline: { fds: server.fds(), threads: server.threads() } };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/** What must be back to its resting value once every client is gone: what is not, and every value read. */
async function resting(inst: Instance): Promise<{ wrong: string[]; state: Record<string, number> }> {
  const s = inst.server;
  const m = await s.metrics();
  const wrong: string[] = [];
  const sessions = m.get('audio_ident_listen_sessions') ?? -1;
  const clips = m.get('audio_ident_search_clips_in_threads') ?? -1;
  if (sessions !== 0) wrong.push(`audio_ident_listen_sessions ${sessions}`);
  if (clips !== 0) wrong.push(`audio_ident_search_clips_in_threads ${clips}`);
  const fds = s.fds();
  const threads = s.threads();
  if (fds > inst.baseline.fds + FD_MARGIN) wrong.push(`open file descriptors ${fds}, ${inst.baseline.fds} after the warm-up`);
  if (threads > inst.baseline.threads + THREAD_MARGIN) wrong.push(`threads ${threads}, ${inst.baseline.threads} after the warm-up`);
  const uploads = s.uploads();
  if (uploads.length) wrong.push(`${uploads.length} file(s) left in uploads/: ${uploads.slice(0, 5).join(', ')}`);
  const ffmpeg = s.ffmpegChildren();
  if (ffmpeg.length) wrong.push(`${ffmpeg.length} ffmpeg child process(es): ${ffmpeg.slice(0, 3).join('; ')}`);
  const state = {
    sessions,
    clips,
    fds,
    fdsAfterWarmUp: inst.baseline.fds,
    threads,
    threadsAfterWarmUp: inst.baseline.threads,
    uploads: uploads.length,
    ffmpeg: ffmpeg.length,
  };
  return { wrong, state };
}

async function settled(s: ServerProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const m = await s.metrics();
    if (m.get('audio_ident_listen_sessions') === 0 && m.get('audio_ident_search_clips_in_threads') === 0) return;
    await sleep(100);
  }
}

/** Failures, each kept once per signature with its first case, and how often it was seen. */
class Findings {
  private readonly seen = new Map<string, { count: number; file?: string }>();
  private dir: string | undefined;

  constructor(
    private readonly seed: number,
    private readonly saveDir: string | undefined,
  ) {}

  get distinct(): number {
    return this.seen.size;
  }

  has(signature: string): boolean {
    return this.seen.has(signature);
  }

  add(f: Failure, c?: FuzzCase, index?: number, o?: Outcome, extra: Record<string, unknown> = {}): void {
    const prior = this.seen.get(f.signature);
    if (prior) {
      prior.count++;
      return;
    }
    const entry: { count: number; file?: string } = { count: 1 };
    this.seen.set(f.signature, entry);
    const outcome = o ? summarize(o) : undefined;
    if (c) {
      const seedFile: SeedFile = {
        name: f.signature,
        note: f.detail,
        found: { seed: this.seed, index: index ?? -1, failure: f, ...(outcome ? { outcome } : {}) },
        case: c,
      };
      entry.file = this.save(f, seedFile);
    }
    const json = c ? JSON.stringify(c) : '';
    log.error('fuzz failure', {
      kind: f.kind,
      signature: f.signature,
      detail: f.detail,
      seed: this.seed,
      ...(index !== undefined ? { index } : {}),
      ...(c ? { family: c.family } : {}),
      ...(outcome ? { outcome } : {}),
      ...extra,
      ...(entry.file ? { seedFile: entry.file, replay: `node dist/tools/fuzz.js --replay ${entry.file}` } : {}),
      // Small cases in full, so that the log alone reproduces them.
      ...(json && json.length <= 4000 ? { case: c } : {}),
    });
  }

  private save(f: Failure, s: SeedFile): string {
    this.dir ??= this.saveDir ?? path.join(os.tmpdir(), `audio-ident-fuzz-failures-${this.seed}`);
    mkdirSync(this.dir, { recursive: true });
    const hash = createHash('sha256').update(f.signature).digest('hex').slice(0, 8);
    const file = path.join(this.dir, `${f.kind}-${s.case.family}-${hash}.json`);
    writeFileSync(file, `${JSON.stringify(s, null, 1)}\n`);
    return file;
  }

  summary(): { signature: string; count: number; seedFile?: string }[] {
    return [...this.seen].map(([signature, e]) => ({ signature, count: e.count, ...(e.file ? { seedFile: e.file } : {}) }));
  }
}

/** Counters for the summary. */
class Tally {
  readonly cases: Record<string, number> = {};
  readonly statuses: Record<string, number> = {};
  readonly closes: Record<string, number> = {};
  total = 0;

  count(c: FuzzCase, o: Outcome): void {
    this.total++;
    this.cases[c.family] = (this.cases[c.family] ?? 0) + 1;
    if (o.kind === 'http') {
      for (const r of o.responses.length ? o.responses : [undefined]) {
        const k = r ? String(r.status) : o.timedOut ? 'no answer (hang)' : `no answer (${o.socketError ?? 'closed'})`;
        this.statuses[k] = (this.statuses[k] ?? 0) + 1;
      }
    } else {
      const k = o.timedOut ? 'never' : o.closedBy === 'client' ? 'client went away' : String(o.close?.code ?? '-');
      this.closes[k] = (this.closes[k] ?? 0) + 1;
    }
  }
}

/**
 * An internal error as the server logged it under the ref its answer names, so that two causes
 * behind the same 500 or 1011 count as two failures.
 */
async function explain(f: Failure, server: ServerProcess): Promise<Failure> {
  const ref = /\(ref ([0-9a-f-]{36})\)/.exec(f.detail)?.[1];
  if (!ref) return f;
  // The log line may be read a moment after the answer.
  for (let i = 0; i < 10 && !server.internalError(ref); i++) await sleep(50);
  const said = server.internalError(ref);
  return said ? { ...f, signature: `${f.signature}: ${normalise(said)}`, detail: `${f.detail}; the server logged: ${said}` } : f;
}

/** The refs of internal errors an outcome names (in a 500's body, or a 1011's reason). */
function refsIn(o: Outcome): string[] {
  const texts = o.kind === 'http' ? o.responses.map((r) => r.body) : [...o.messages, o.close?.reason ?? ''];
  return texts.flatMap((t) => [...t.matchAll(/\(ref ([0-9a-f-]{36})\)/g)].map((m) => m[1]!));
}

const dropped = (o: Outcome) => (o.kind === 'http' ? o.responses.length === 0 : !o.opened || o.closedBy === 'drop');

const normalise = (crash: string) => crash.replace(/\d+/g, 'N').slice(0, 200);

interface Suspect {
  index: number;
  c: FuzzCase;
}

/** One fuzz run: its servers (a fresh one after each crash), workers, findings and counters. */
class Run {
  private readonly findings: Findings;
  private readonly tally = new Tally();
  private readonly disabled = new Set<string>();
  private readonly inflight = new Map<number, FuzzCase>();
  /** Cases that ended in the last moments: a crash may follow its cause by a little. */
  private readonly recent: (Suspect & { at: number })[] = [];
  private inst!: Instance;
  /** The cases in flight when the current server exited. */
  private atExit: Suspect[] = [];
  private boots = 0;
  private crashes = 0;
  private next = 0;
  private end = 0;
  private recovering: Promise<void> | undefined;
  private giveUp = false;
  /** Refs of internal errors that some client was told of. */
  private readonly answeredRefs = new Set<string>();

  constructor(
    private readonly opts: { seconds: number; seed: number; workers: number; save?: string },
    private readonly workDir: string,
    private readonly audio: AudioSet,
  ) {
    this.findings = new Findings(opts.seed, opts.save);
  }

  private async fresh(): Promise<void> {
    const inst = await boot(this.workDir, this.audio, this.boots++);
    const atExit: Suspect[] = [];
    void inst.server.exited.then(() => atExit.push(...[...this.inflight].map(([index, c]) => ({ index, c }))));
    this.inst = inst;
    this.atExit = atExit;
  }

  async run(): Promise<number> {
    await this.fresh();
    // The budget is fuzzing time: time spent restarting and naming a crash's case is added to it.
    this.end = Date.now() + this.opts.seconds * 1000;
    log.info('fuzz start', { seed: this.opts.seed, seconds: this.opts.seconds, workers: this.opts.workers, families: FAMILIES.map((f) => f.name) });
    await Promise.all(Array.from({ length: this.opts.workers }, () => this.worker()));
    if (this.recovering) await this.recovering;
    // A crash in the last moments, after the workers stopped, is named like any other.
    if (this.inst.server.exit && !this.giveUp) await this.recover();
    await this.finish();
    return this.findings.distinct ? 1 : 0;
  }

  private async worker(): Promise<void> {
    while (Date.now() < this.end && !this.giveUp) {
      if (this.recovering) {
        await this.recovering;
        continue;
      }
      const here = this.inst;
      if (here.server.exit) {
        this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
        continue;
      }
      const index = this.next++;
      const c = generate(this.opts.seed, index, here.res);
      if (this.disabled.has(c.family)) continue;
      this.inflight.set(index, c);
      const o = await replay(c, { url: here.server.url, res: here.res, deadlineMs: CASE_DEADLINE_MS });
      this.inflight.delete(index);
      this.recent.push({ index, c, at: Date.now() });
      if (this.recent.length > 50) this.recent.shift();
      // What a case saw of a server that died under it says nothing about the case; the exit
      // may be reported a moment after the connection dropped.
      if (dropped(o)) await Promise.race([here.server.exited, sleep(1000)]);
      if (here.server.exit) continue;
      this.tally.count(c, o);
      for (const ref of refsIn(o)) this.answeredRefs.add(ref);
      for (const f of check(c, o)) this.findings.add(await explain(f, here.server), c, index, o);
    }
  }

  /** Replays cases together on the current server; true (and a fresh server) if it crashed. */
  private async crashesWith(cases: Suspect[]): Promise<boolean> {
    const { server, res } = this.inst;
    const outcomes = await Promise.all(cases.map((s) => replay(s.c, { url: server.url, res, deadlineMs: CASE_DEADLINE_MS })));
    for (const ref of outcomes.flatMap(refsIn)) this.answeredRefs.add(ref);
    await Promise.race([server.exited, sleep(500)]);
    if (!server.exit) return false;
    await this.fresh();
    return true;
  }

  /**
   * After a crash: records it, starts a fresh server and, if the crash is new, names its case:
   * the cases in flight when it exited are replayed together, then (if that did not crash it)
   * those that had just ended; a group that crashes it is halved until one case is left.
   */
  private async recover(): Promise<void> {
    const paused = Date.now();
    const server = this.inst.server;
    const said = server.crashSignature();
    const failure: Failure = {
      kind: 'server_exit',
      signature: `server_exit ${normalise(said)}`,
      detail: `the server exited (code ${server.exit?.code}, signal ${server.exit?.signal}): ${said}`,
    };
    const isNew = !this.findings.has(failure.signature);
    for (let i = 0; i < 400 && this.inflight.size; i++) await sleep(100);
    const inFlight = new Set(this.atExit.map((s) => s.index));
    const groups = [this.atExit, this.recent.filter((r) => r.at >= server.exitedAt - 2000 && !inFlight.has(r.index))];
    if (++this.crashes > MAX_CRASHES) {
      this.findings.add(failure, undefined, undefined, undefined, { logTail: server.logTail(25), note: `stopping after ${MAX_CRASHES} crashes` });
      this.giveUp = true;
      return;
    }
    await this.fresh();
    let culprit: Suspect | undefined;
    for (let group of isNew ? groups : []) {
      if (!group.length || !(await this.crashesWith(group))) continue;
      // Halved until one case is left: a half that crashed it holds the case, else the other half.
      let confirmed = true;
      while (group.length > 1) {
        const half = group.slice(0, Math.ceil(group.length / 2));
        confirmed = await this.crashesWith(half);
        group = confirmed ? half : group.slice(half.length);
      }
      // A case named only because the other half did not crash must crash it alone.
      if (confirmed || (await this.crashesWith(group))) culprit = group[0];
      break;
    }
    this.findings.add(failure, culprit?.c, culprit?.index, undefined, {
      logTail: server.logTail(25),
      ...(isNew && !culprit ? { suspects: groups.flat().map((s) => s.index), reproduced: false } : {}),
    });
    if (culprit) {
      // The family would only crash it again and again: the rest of the budget goes to the others.
      this.disabled.add(culprit.c.family);
      log.warn('fuzz family disabled after a crash', { family: culprit.c.family, index: culprit.index });
    }
    this.end += Date.now() - paused;
  }

  /** The checks once every client is gone, the shutdown, and the summary. */
  private async finish(): Promise<void> {
    const { server } = this.inst;
    let wrong: string[] = [];
    let state: Record<string, number> = {};
    for (const until = Date.now() + SETTLE_MS; Date.now() < until && !server.exit; await sleep(500)) {
      ({ wrong, state } = await resting(this.inst).catch((e: Error) => ({ wrong: [`no answer from /metrics: ${e.message}`], state: {} })));
      if (!wrong.length) break;
    }
    if (server.exit) {
      this.findings.add({
        kind: 'server_exit',
        signature: `server_exit ${normalise(server.crashSignature())}`,
        detail: `the server exited at the end: ${server.crashSignature()}`,
      });
    }
    for (const w of wrong)
      this.findings.add({
        kind: 'leak',
        signature: `leak ${w.replace(/\d+/g, 'N').slice(0, 80)}`,
        detail: `${SETTLE_MS / 1000} s after the last client: ${w}`,
      });
    // An internal error no client heard of: a failure on a request whose client had gone (a body cut short).
    for (const [ref, said] of server.loggedInternalErrors()) {
      if (this.answeredRefs.has(ref)) continue;
      this.findings.add({
        kind: 'internal_error',
        signature: `internal_error logged, not answered: ${normalise(said)}`,
        detail: `the server logged an internal error that no client was answered with (ref ${ref} in ${server.logPath}): ${said}`,
      });
    }
    const serverLog = { internalErrors: server.internalErrors, unstructuredLines: server.unstructuredLines };
    const stopped = await server.stop();
    if (!stopped.graceful && !server.exit?.signal) {
      this.findings.add({ kind: 'shutdown', signature: 'shutdown hang', detail: 'the server did not exit within 15 s of SIGTERM' });
    } else if (stopped.graceful && stopped.exit.code !== 0) {
      this.findings.add({
        kind: 'shutdown',
        signature: `shutdown exit ${stopped.exit.code}`,
        detail: `the server exited with ${stopped.exit.code} on SIGTERM`,
      });
    }
    const left = stopped.graceful ? server.tempFiles() : [];
    if (left.length)
      this.findings.add({ kind: 'leak', signature: 'leak temp files after shutdown', detail: `the server left ${left.join(', ')} in ${os.tmpdir()}` });
    const { seed, seconds } = this.opts;
    log.info('fuzz summary', {
      seed,
      seconds,
      cases: this.tally.total,
      byFamily: this.tally.cases,
      httpStatuses: this.tally.statuses,
      closeCodes: this.tally.closes,
      crashes: this.crashes,
      resting: state,
      disabledFamilies: [...this.disabled],
      lastServerLog: serverLog,
      distinctFailures: this.findings.distinct,
    });
    for (const f of this.findings.summary()) log.error('fuzz failure seen', f);
    if (this.findings.distinct) {
      // The servers' logs stay for the failures; their data dirs (an embedded catalog each) go.
      for (const d of readdirSync(this.workDir).filter((n) => n.includes('-data-'))) await rm(path.join(this.workDir, d), { recursive: true, force: true });
      log.error('fuzz failed', {
        seed,
        distinctFailures: this.findings.distinct,
        again: `node dist/tools/fuzz.js --seconds ${seconds} --seed ${seed}`,
        serverLogs: this.workDir,
      });
    } else {
      await rm(this.workDir, { recursive: true, force: true });
    }
  }
}

/** Replays seed files, one after another, on one fresh server; the same checks as a fuzz run. */
async function replayFiles(files: string[]): Promise<number> {
  const workDir = await tempWorkDir();
  const inst = await boot(workDir, await makeAudioSet(), 0);
  let failed = 0;
  for (const file of files) {
    const seed = JSON.parse(readFileSync(file, 'utf8')) as SeedFile;
    const o = await replay(seed.case, { url: inst.server.url, res: inst.res, deadlineMs: CASE_DEADLINE_MS });
    await sleep(500);
    const failures = check(seed.case, o);
    if (inst.server.exit) failures.push({ kind: 'server_exit', signature: 'server_exit', detail: inst.server.crashSignature() });
    failed += failures.length ? 1 : 0;
    (failures.length ? log.error : log.info)('fuzz replay', { file, name: seed.name, outcome: summarize(o), failures: failures.map((f) => f.detail) });
    if (inst.server.exit) break;
  }
  await inst.server.stop();
  await rm(workDir, { recursive: true, force: true });
  return failed ? 1 : 0;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      workers: { type: 'string', default: '6' },
      save: { type: 'string' },
      replay: { type: 'boolean', default: false },
    },
  });
  if (values.replay) return replayFiles(positionals);
  const seconds = Number(values.seconds);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  const workers = Number(values.workers);
  if (!(seconds > 0) || !Number.isInteger(seed) || !(workers >= 1))
    throw new Error('usage: fuzz.js [--seconds S] [--seed N] [--workers W] [--save DIR] | --replay FILE...');
  return new Run({ seconds, seed, workers, ...(values.save ? { save: path.resolve(values.save) } : {}) }, await tempWorkDir(), await makeAudioSet()).run();
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e: unknown) => {
    log.error('fuzz could not run', { error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exitCode = 2;
    await ServerProcess.stopAll();
  },
);
