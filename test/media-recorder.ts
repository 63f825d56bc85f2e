// Records audio with a real browser's MediaRecorder: headless Chromium captures a WAV file as its
// fake microphone and posts each 250 ms slice of WebM/Opus to a local page server, as a web client
// would stream them. Used by the live-listening tests.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM } from './fixtures.js';

const page = (seconds: number) => `<!doctype html><script>
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  const rec = new MediaRecorder(stream, { mimeType: 'audio/webm;codecs=opus' });
  let i = 0;
  const sent = [];
  rec.ondataavailable = (e) => sent.push(fetch('/slice?i=' + i++, { method: 'POST', body: e.data }));
  rec.onstop = async () => { await Promise.all(sent); await fetch('/done', { method: 'POST' }); };
  rec.start(250);
  setTimeout(() => rec.stop(), ${seconds * 1000});
})().catch((e) => fetch('/fail', { method: 'POST', body: String(e) }));
</script>`;

/** The slices Chromium's MediaRecorder produced while recording `seconds` of the WAV file. */
export async function recordWithChromium(wav: string, seconds: number): Promise<Buffer[]> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'audio-ident-chromium-'));
  const slices: Buffer[] = [];
  let chrome: ReturnType<typeof spawn> | undefined;
  let stderr = '';
  try {
    return await new Promise<Buffer[]>((resolve, reject) => {
      const server = http.createServer((req, res) => {
        const body: Buffer[] = [];
        req.on('data', (c: Buffer) => body.push(c));
        req.on('end', () => {
          const url = new URL(req.url ?? '/', 'http://x');
          if (url.pathname === '/') {
            res.setHeader('content-type', 'text/html');
            res.end(page(seconds));
            return;
          }
          res.end();
          if (url.pathname === '/slice') slices[Number(url.searchParams.get('i'))] = Buffer.concat(body);
          if (url.pathname === '/done' || url.pathname === '/fail') {
            server.close();
            if (url.pathname === '/done') resolve(slices);
            else reject(new Error(`MediaRecorder failed: ${Buffer.concat(body).toString()}`));
          }
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const flags = [
          '--headless=new',
          '--no-sandbox',
          '--disable-gpu',
          '--use-fake-ui-for-media-stream',
          '--use-fake-device-for-media-stream',
          `--use-file-for-fake-audio-capture=${wav}`,
          '--autoplay-policy=no-user-gesture-required',
          `--user-data-dir=${profile}`,
        ];
        chrome = spawn(CHROMIUM, [...flags, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`], {
          stdio: ['ignore', 'ignore', 'pipe'],
          detached: true,
        });
        chrome.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
        chrome.once('error', reject);
        chrome.once('exit', (code) => reject(new Error(`chromium exited (${code}) before the recording was done: ${stderr}`)));
      });
    });
  } finally {
    // Chromium's helper processes outlive a killed browser process and go on writing into the
    // profile, so the whole process group goes, and the profile only once the browser is gone.
    if (chrome?.pid !== undefined && chrome.exitCode === null && chrome.signalCode === null) {
      const exited = new Promise((r) => chrome!.once('exit', r));
      try {
        process.kill(-chrome.pid, 'SIGKILL');
      } catch {
        chrome.kill('SIGKILL');
      }
      await exited;
    }
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}
