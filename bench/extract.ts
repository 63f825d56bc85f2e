// Fingerprint extraction benchmark (npm run bench:extract [-- --tracks 6] [-- --repeats 7]):
// decodes a few tracks of the small corpus once, then times the extractor alone for the catalog
// and query profiles. The query profile analyses two frame phases, so it costs about twice as much
// per second of audio.
import { parseArgs } from 'node:util';
import { decodeFile, SAMPLE_RATE } from '../src/audio/decode.js';
import { PROFILES, type Profile } from '../src/exact/fingerprint.js';
import { fetchCorpus } from '../tools/corpus.js';
import { extractionSpeeds } from './extraction.js';
import { quantile } from './stats.js';

const { values } = parseArgs({ options: { tracks: { type: 'string', default: '6' }, repeats: { type: 'string', default: '7' } } });

async function main() {
  const corpus = (await fetchCorpus('small')).sort((a, b) => a.name.localeCompare(b.name));
  const pcms = await Promise.all(corpus.slice(0, Number(values.tracks)).map((t) => decodeFile(t.file)));
  const minutes = pcms.reduce((a, p) => a + p.length, 0) / SAMPLE_RATE / 60;
  const repeats = Number(values.repeats);
  // One untimed pass warms caches and lets V8 settle.
  extractionSpeeds(pcms.slice(0, 1), 'index', 1);
  const lines = [
    `${pcms.length} tracks, ${minutes.toFixed(1)} min of audio; CPU time, ${repeats} repeats`,
    '',
    '| profile | x real time on one core: median (min..max) |',
    '|---|---|',
  ];
  for (const profile of Object.keys(PROFILES) as Profile[]) {
    const s = extractionSpeeds(pcms, profile, repeats);
    lines.push(
      `| ${profile} (${PROFILES[profile].phases} phase${PROFILES[profile].phases > 1 ? 's' : ''}) | ` +
        `${quantile(s, 0.5).toFixed(0)}x (${Math.min(...s).toFixed(0)}..${Math.max(...s).toFixed(0)}) |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
