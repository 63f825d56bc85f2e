// Checks the layering of src/: each top-level folder (a file at the top counts as its own) may
// import only the folders below it in LAYERS, so no import cycle can form between folders.
// Run by .ci/run; prints each import that goes the wrong way and exits 1 if there is one.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

// Lowest first. A folder may import its own files and any folder of a lower layer.
const LAYERS = [['base'], ['audio'], ['exact', 'vibe'], ['catalog'], ['engine'], ['api'], ['http', 'listen'], ['serve.ts'], ['cli']];
const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i])));

const src = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'src');
const files = [];
const walk = (d) => {
  for (const e of readdirSync(d)) {
    const p = path.join(d, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
  }
};
walk(src);

const top = (file) => path.relative(src, file).split(path.sep)[0].replace(/\.js$/, '.ts');
const wrong = [];
for (const file of files) {
  const from = top(file);
  if (!layerOf.has(from)) wrong.push(`${path.relative(src, file)}: folder ${from} is not in LAYERS`);
  const text = readFileSync(file, 'utf8');
  for (const [, spec] of text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)['"](\.\.?\/[^'"]+)['"]/g)) {
    const to = top(path.resolve(path.dirname(file), spec));
    if (to === from) continue;
    if (!layerOf.has(to)) wrong.push(`${path.relative(src, file)} imports ${spec}: outside the layers`);
    else if (layerOf.get(to) >= layerOf.get(from)) wrong.push(`${path.relative(src, file)} (${from}) imports ${spec} (${to}): ${to} is not below ${from}`);
  }
}
if (wrong.length) {
  console.error(`import layering: ${wrong.length} wrong import(s)\n${wrong.join('\n')}`);
  process.exit(1);
}
console.log(`import layering: ${files.length} files, every import goes down (${LAYERS.map((l) => l.join('/')).join(' < ')})`);
