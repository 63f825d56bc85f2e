// Fingerprint extraction speed on one core, decode excluded: shared by bench:extract and
// bench:accuracy. CPU time of this process, not wall time, so that the figure holds on a machine
// shared with other work.
import { SAMPLE_RATE } from '../src/audio/decode.js';
import { fingerprint, type Profile } from '../src/exact/fingerprint.js';

/** Seconds of audio fingerprinted per CPU second, once per repeat over all of `pcms`. */
export function extractionSpeeds(pcms: Float32Array[], profile: Profile, repeats: number): number[] {
  const audioSeconds = pcms.reduce((a, p) => a + p.length, 0) / SAMPLE_RATE;
  const speeds: number[] = [];
  for (let rep = 0; rep < repeats; rep++) {
    const c0 = process.cpuUsage();
    for (const p of pcms) fingerprint(p, profile);
    const c1 = process.cpuUsage(c0);
    speeds.push(audioSeconds / ((c1.user + c1.system) / 1e6));
  }
  return speeds;
}
