// Reads of the fingerprint index in a child process of its own: LMDB trusts its file, and a
// damaged page can crash the process that reads it (SIGSEGV, a native abort) rather than throw.
// Every open reads a sample first (FingerprintIndex.check); the server then reads all of it once
// (FingerprintIndex.scan) in the background.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FingerprintIndex } from './fingerprint-index.js';
import { DataStore } from './lmdb.js';

export type ScanResult = { ok: true; tracks: number; entries: number; seconds: number } | { ok: false; reason: string };

export function scanIndex(dataDir: string, depth: 'sample' | 'full'): Promise<ScanResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dataDir, depth], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    child.on('error', (e) => resolve({ ok: false, reason: `the index scan could not start: ${e.message}` }));
    child.on('close', (code, signal) => {
      if (code === 0) {
        const r = JSON.parse(out) as { tracks: number; entries: number };
        resolve({ ok: true, ...r, seconds: (performance.now() - started) / 1000 });
      } else {
        resolve({
          ok: false,
          reason: signal ? `reading it crashed the reader (${signal})` : err.trim().split('\n').at(-1) || `the reader exited with ${code}`,
        });
      }
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const store = DataStore.openReader(process.argv[2]!);
    const index = new FingerprintIndex(store);
    const entries = process.argv[3] === 'full' ? index.scan().entries : 0;
    process.stdout.write(JSON.stringify({ tracks: index.check().length, entries }));
    await store.close();
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
