// What the fuzzer sends, as data. A case is a list of WebSocket steps or one raw HTTP request, both
// made of pieces (text, base64, a run of one byte, a slice of generated audio with bits flipped,
// the API key, a catalog track's id), so that a failing case is saved as a small JSON seed and
// replayed byte for byte against any server. Case i of a seed is drawn from its own PRNG stream,
// so it is the same case however many workers run and in whatever order they finish.
import { audioRef, type AudioSet, type Container, TRACK_SECONDS, TRACKS } from './fuzz-audio.js';
import { rng } from './corpus.js';

export type Piece =
  | { text: string }
  | { b64: string }
  | { fill: number; n: number }
  /** Bytes [from, to) of a generated audio file, after flipping the given bits (indices into the whole file). */
  | { audio: string; from: number; to: number; flips?: number[] }
  | { apiKey: true }
  /** The id of the n-th track the harness ingested. */
  | { trackId: number };

export type ListenStep =
  | { op: 'text'; data: Piece[] }
  | { op: 'binary'; data: Piece[] }
  | { op: 'wait'; ms: number }
  | { op: 'destroy' }
  /** Consecutive binary messages of a generated audio file from `from`, of `sizes[i]` bytes, each followed by a wait of `waits[i]` ms. */
  | { op: 'chunks'; audio: string; from: number; sizes: number[]; waits: number[]; flips?: number[] };

/** What the protocol documents for a case, when it is certain: the close codes allowed, the `error` code sent first (null: none). */
export interface ListenExpect {
  close: number[];
  error?: string | null;
}
export interface HttpExpect {
  status: number[];
  code?: string;
  /** Text the first response's body must hold. */
  bodyIncludes?: string;
}

export interface ListenCase {
  kind: 'listen';
  family: string;
  steps: ListenStep[];
  expect?: ListenExpect;
}
export interface HttpCase {
  kind: 'http';
  family: string;
  /** The raw request, request line to the last body byte. */
  request: Piece[];
  /** After writing: wait for the answer, half-close the socket (a body cut short), or vanish. */
  after: 'wait' | 'half-close' | { destroyAfterMs: number };
  expect?: HttpExpect;
}
export type FuzzCase = ListenCase | HttpCase;

/** A seed file (test/fuzz-seeds/, or what the fuzzer saves): a case, what it is, and where it was found. */
export interface SeedFile {
  name: string;
  note?: string;
  found?: { seed: number; index: number; failure: { kind: string; signature: string; detail: string }; outcome?: Record<string, unknown> };
  case: FuzzCase;
}

/** What pieces refer to on the server under test. */
export interface Resources {
  audio: AudioSet;
  apiKey: string;
  trackIds: string[];
}

const audioOf = (res: Resources, ref: string): Buffer => {
  const a = res.audio.get(ref);
  if (!a) throw new Error(`no generated audio ${ref}`);
  return a;
};

function resolvePiece(p: Piece, res: Resources): Buffer {
  if ('text' in p) return Buffer.from(p.text);
  if ('b64' in p) return Buffer.from(p.b64, 'base64');
  if ('fill' in p) return Buffer.alloc(p.n, p.fill);
  if ('apiKey' in p) return Buffer.from(res.apiKey);
  if ('trackId' in p) return Buffer.from(res.trackIds[p.trackId] ?? '');
  const whole = audioOf(res, p.audio);
  const out = Buffer.from(whole.subarray(p.from, p.to));
  for (const bit of p.flips ?? []) {
    const at = (bit >> 3) - p.from;
    if (at >= 0 && at < out.length) out[at]! ^= 1 << (bit & 7);
  }
  return out;
}

export const resolve = (pieces: Piece[], res: Resources): Buffer => Buffer.concat(pieces.map((p) => resolvePiece(p, res)));

const pieceLength = (p: Piece, res: Resources): number => {
  if ('text' in p) return Buffer.byteLength(p.text);
  if ('fill' in p) return p.n;
  if ('audio' in p) return Math.max(0, Math.min(p.to, audioOf(res, p.audio).length) - p.from);
  return resolvePiece(p, res).length;
};
const lengthOf = (pieces: Piece[], res: Resources) => pieces.reduce((n, p) => n + pieceLength(p, res), 0);

/** Bytes as the most readable piece that holds them exactly: text when they are valid UTF-8. */
function bytesPiece(b: Buffer): Piece {
  const s = b.toString('utf8');
  return Buffer.from(s).equals(b) ? { text: s } : { b64: b.toString('base64') };
}

/** Adjacent text pieces joined, so that seeds read as text where they are text. */
function merge(pieces: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    const last = out.at(-1);
    if (last && 'text' in last && 'text' in p) out[out.length - 1] = { text: last.text + p.text };
    else if (!('text' in p) || p.text !== '') out.push(p);
  }
  return out;
}

// --- drawing --------------------------------------------------------------------------------

class Draw {
  constructor(private readonly r: () => number) {}
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  /** An integer in [lo, hi], small ones far likelier (sizes). */
  skewed(lo: number, hi: number): number {
    return lo + Math.floor(this.r() ** 3 * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  weighted<T extends { weight: number }>(xs: readonly T[]): T {
    let x = this.r() * xs.reduce((s, e) => s + e.weight, 0);
    for (const e of xs) {
      x -= e.weight;
      if (x < 0) return e;
    }
    return xs.at(-1)!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.r() * 256);
    return b;
  }
}

// Characters that take 2, 3 and 4 bytes of UTF-8, a combining mark and a zero-width space: a
// long run of them is what a close reason cut at 123 bytes splits.
const MULTIBYTE = ['é', '€', '😀', 'ア', 'ß', 'Ω', '\u0301', '\u200b', 'ж'];
const CONTROL = ['\u0000', '\n', '\r', '\t', '\u001b', '\u007f', '\u2028', '\ufeff'];

/** A string made to break things: multibyte runs, control characters, near-miss names, huge runs. */
function strangeText(d: Draw): string {
  switch (d.int(0, 5)) {
    case 0:
      return d.pick(MULTIBYTE).repeat(d.int(1, 200));
    case 1:
      return Array.from({ length: d.int(1, 40) }, () => (d.chance(0.5) ? d.pick(CONTROL) : String.fromCharCode(d.int(32, 126)))).join('');
    case 2:
      return d.pick(['start', 'stop', 'webm-opus', 'ogg-opus', 'pcm-f32le', 'exact', 'vibe', 'both']) + d.pick(['', ' ', '\u0000', 'é', '€'.repeat(40)]);
    case 3:
      return d.pick(['START', ' start', 'Start', 'webm', 'opus', 'audio/webm;codecs=opus', '', '__proto__', 'constructor', 'toString']);
    case 4:
      return Array.from({ length: d.int(1, 30) }, () => String.fromCodePoint(d.int(0x80, 0x2fff))).join('');
    default:
      return Array.from({ length: d.int(0, 40) }, () => String.fromCharCode(d.int(32, 126))).join('');
  }
}

/** A JSON string literal: strange text, a lone surrogate escape, or a huge run (kept small in a seed as a fill). */
function jsonString(d: Draw): Piece[] {
  if (d.chance(0.08)) return [{ text: '"' }, { fill: d.pick([0x41, 0x20, 0x2e]), n: d.skewed(200, 300_000) }, { text: '"' }];
  if (d.chance(0.08)) return [{ text: d.pick(['"\\ud800"', '"a\\udfffb"', '"\\u0000"', '"\\"\\\\"']) }];
  return [{ text: JSON.stringify(strangeText(d)) }];
}

/** Any JSON value, as text pieces. */
function jsonValue(d: Draw, depth = 0): Piece[] {
  const k = d.int(0, depth > 2 ? 4 : 7);
  if (k === 0) return [{ text: d.pick(['null', 'true', 'false']) }];
  if (k === 1) return [{ text: d.pick(['0', '-0', '1', '-1', '1.5', '1e999', '-1e999', '9007199254740993', '50', '51', '8000', '192001', '1e-400']) }];
  if (k <= 4) return jsonString(d);
  if (k === 5) {
    // Deep nesting, as a run of brackets.
    const n = d.skewed(1, 100_000);
    return [
      { fill: 0x5b, n },
      { fill: 0x5d, n },
    ];
  }
  if (k === 6) {
    const items = Array.from({ length: d.int(0, 4) }, () => jsonValue(d, depth + 1));
    return [{ text: '[' }, ...items.flatMap((v, i) => (i ? [{ text: ',' }, ...v] : v)), { text: ']' }];
  }
  const fields = Array.from({ length: d.int(0, 4) }, () => [...jsonString(d), { text: ':' }, ...jsonValue(d, depth + 1)]);
  return [{ text: '{' }, ...fields.flatMap((f, i) => (i ? [{ text: ',' }, ...f] : f)), { text: '}' }];
}

const object = (fields: [string, Piece[]][]): Piece[] =>
  merge([{ text: '{' }, ...fields.flatMap(([k, v], i) => [{ text: `${i ? ',' : ''}${JSON.stringify(k)}:` }, ...v]), { text: '}' }]);
const str = (s: string): Piece[] => [{ text: JSON.stringify(s) }];

const STREAM_FORMATS = ['webm-opus', 'ogg-opus', 'pcm-f32le'] as const;
type StreamFormat = (typeof STREAM_FORMATS)[number];
const CONTAINER_OF: Record<StreamFormat, Container> = { 'webm-opus': 'webm', 'ogg-opus': 'ogg', 'pcm-f32le': 'pcm' };

/** A start message whose fields are each valid or strange at random. */
function randomStart(d: Draw): Piece[] {
  const fields: [string, Piece[]][] = [['type', d.chance(0.9) ? str('start') : jsonValue(d)]];
  const wild = (valid: () => Piece[]) => (d.chance(0.7) ? valid() : jsonValue(d));
  if (d.chance(0.9)) fields.push(['format', wild(() => str(d.pick(STREAM_FORMATS)))]);
  if (d.chance(0.5)) fields.push(['sample_rate', wild(() => [{ text: String(d.pick([8000, 16000, 44100, 48000, 192000])) }])]);
  if (d.chance(0.5)) fields.push(['mode', wild(() => str(d.pick(['exact', 'vibe', 'both'])))]);
  if (d.chance(0.4)) fields.push(['max_results', wild(() => [{ text: String(d.int(1, 50)) }])]);
  if (d.chance(0.4)) fields.push(['continuous', wild(() => [{ text: d.pick(['true', 'false']) }])]);
  if (d.chance(0.15)) fields.push([strangeText(d), jsonValue(d)]);
  return object(fields);
}

// --- live listening ----------------------------------------------------------------------------

/** A valid start for a format, and its audio. */
function validStart(d: Draw, format: StreamFormat): Piece[] {
  const fields: [string, Piece[]][] = [
    ['type', str('start')],
    ['format', str(format)],
  ];
  if (format === 'pcm-f32le') fields.push(['sample_rate', [{ text: '16000' }]]);
  if (d.chance(0.5)) fields.push(['mode', str(d.pick(['exact', 'both']))]);
  if (d.chance(0.3)) fields.push(['continuous', [{ text: d.pick(['true', 'false']) }]]);
  if (d.chance(0.3)) fields.push(['max_results', [{ text: String(d.int(1, 50)) }]]);
  return object(fields);
}

/**
 * Real audio streamed after a valid start: a prefix of up to 6 s, chunked at random sizes and
 * paced in one of several ways, perhaps with bits flipped, a stretch skipped or another container
 * than the one announced; it ends with stop, a vanishing client, silence, or a protocol mistake.
 */
function streamCase(d: Draw, res: Resources): ListenCase {
  const format = d.pick(STREAM_FORMATS);
  const mismatch = d.chance(0.12);
  const container: Container = mismatch ? d.pick(['webm', 'ogg', 'pcm', 'vorbis', 'mp3', 'wav'] as const) : CONTAINER_OF[format];
  const ref = audioRef(container, d.int(0, TRACKS - 1));
  const whole = audioOf(res, ref);
  const seconds = d.chance(0.3) ? d.int(1, 10) / 10 : d.int(10, 60) / 10;
  // Now and then the stream starts past its first bytes, as a client that lost its header would send it.
  const headless = d.chance(0.08);
  let from = headless ? d.int(1, Math.min(4096, whole.length - 1)) : 0;
  const end = Math.min(whole.length, Math.ceil((whole.length * seconds) / TRACK_SECONDS));
  const flips: number[] = [];
  if (d.chance(0.3)) {
    const lo = d.chance(0.3) ? 0 : from * 8;
    const hi = d.chance(0.3) ? Math.min(end, 256) * 8 : end * 8;
    for (let k = d.int(1, 16); k > 0; k--) flips.push(d.int(lo, Math.max(lo, hi - 1)));
  }
  // One stretch of the stream left out, as a lost packet of a broken client would be.
  let skipAt = d.chance(0.15) ? d.int(from, end) : -1;
  const skipped = skipAt >= 0;
  const pace = d.pick(['realtime', 'burst', 'random', 'stall'] as const);
  const sizes = d.pick(['tiny', 'small', 'large', 'mixed'] as const);
  const bytesPerMs = whole.length / (TRACK_SECONDS * 1000);
  // At most about 2000 messages a case.
  const least = Math.max(1, Math.ceil((end - from) / 2000));
  const steps: ListenStep[] = [{ op: 'text', data: validStart(d, format) }];
  let run: Extract<ListenStep, { op: 'chunks' }> | undefined;
  let waited = 0;
  let oversize = false;
  while (from < end) {
    if (skipAt >= 0 && from >= skipAt) {
      from += d.int(1, 4096);
      skipAt = -1;
      run = undefined;
      if (from >= end) break;
    }
    if (!run) {
      run = { op: 'chunks', audio: ref, from, sizes: [], waits: [], ...(flips.length ? { flips } : {}) };
      steps.push(run);
    }
    const n =
      sizes === 'tiny'
        ? d.int(1, 16)
        : sizes === 'small'
          ? d.int(16, 2048)
          : sizes === 'large'
            ? d.int(2048, 131072)
            : d.skewed(1, d.chance(0.02) ? 200_000 : 131072);
    const to = Math.min(end, from + Math.max(least, n));
    oversize ||= to - from > 128 * 1024;
    const ms =
      pace === 'realtime'
        ? Math.round(((to - from) / bytesPerMs) * (0.8 + d.int(0, 30) / 100))
        : pace === 'random'
          ? d.int(0, 300)
          : pace === 'stall' && d.chance(0.05)
            ? d.int(1000, 4000)
            : 0;
    // A case lasts a few seconds at most, so that many run in the budget.
    const wait = waited + ms <= 6000 ? ms : 0;
    waited += wait;
    run.sizes.push(to - from);
    run.waits.push(wait);
    from = to;
  }
  const ending = d.pick(['stop', 'stop', 'stop', 'destroy', 'silence', 'start', 'text', 'oversize'] as const);
  if (ending === 'stop') steps.push({ op: 'text', data: object([['type', str('stop')]]) });
  else if (ending === 'destroy') steps.push({ op: 'destroy' });
  else if (ending === 'start') steps.push({ op: 'text', data: validStart(d, format) });
  else if (ending === 'text') steps.push({ op: 'text', data: jsonValue(d) });
  else if (ending === 'oversize') steps.push({ op: 'binary', data: [{ fill: d.int(0, 255), n: d.pick([131073, 300_000, 600_000]) }] });
  const clean = !mismatch && !headless && flips.length === 0 && !skipped && !oversize && pace === 'realtime';
  // A clean stream at real time that ends with stop is answered and closed with 1000.
  return { kind: 'listen', family: 'listen.stream', steps, ...(clean && ending === 'stop' ? { expect: { close: [1000], error: null } } : {}) };
}

/** One to three text messages of any sort, perhaps not JSON, perhaps not UTF-8. */
function textCase(d: Draw): ListenCase {
  const steps: ListenStep[] = [];
  let expect: ListenExpect | undefined;
  for (let k = d.int(1, 3), i = 0; i < k; i++) {
    const kind = d.int(0, 6);
    let data: Piece[];
    if (kind === 0) {
      const b = d.bytes(d.int(1, 64));
      b[d.int(0, b.length - 1)] = d.pick([0xff, 0xc3, 0xe2, 0xf0, 0xed]);
      data = [bytesPiece(b)];
      // ws refuses a text frame that is not UTF-8 itself, with 1007 and no error message.
      if (i === 0 && 'b64' in data[0]!) expect = { close: [1007], error: null };
    } else if (kind === 1) {
      data = [{ text: d.pick(['', '{', 'null', '"start"', '[1,2]', '{"type":"start"', 'start', '{"type":"start","type":"stop"}', '{}', '[]', '1']) }];
      // Not a JSON object with a known type, or an invalid start.
      if (i === 0) expect = { close: [1008], error: 'PROTOCOL_ERROR' };
    } else if (kind === 2) {
      data = object([['type', jsonString(d)]]);
    } else if (kind === 3) {
      data = randomStart(d);
    } else if (kind === 4) {
      data = object([['type', str('stop')], ...(d.chance(0.5) ? ([[strangeText(d), jsonValue(d)]] as [string, Piece[]][]) : [])]);
      if (i === 0) expect = { close: [1008], error: 'PROTOCOL_ERROR' };
    } else {
      data = jsonValue(d);
    }
    steps.push({ op: 'text', data: merge(data) });
    if (d.chance(0.3)) steps.push({ op: 'wait', ms: d.int(0, 50) });
  }
  return { kind: 'listen', family: 'listen.text', steps, ...(expect ? { expect } : {}) };
}

/** Long multibyte text where it ends up in an error's message: the type, the format, an unknown key. */
function multibyteCase(d: Draw): ListenCase {
  const run = () => d.pick(MULTIBYTE.slice(0, 6)).repeat(d.int(20, 120));
  const where = d.int(0, 2);
  const data =
    where === 0
      ? object([['type', str(run())]])
      : where === 1
        ? object([
            ['type', str('start')],
            ['format', str(run())],
          ])
        : object([
            ['type', str('start')],
            ['format', str('webm-opus')],
            [run(), [{ text: '1' }]],
          ]);
  const expect = where === 1 ? { close: [1003], error: 'UNSUPPORTED_FORMAT' } : { close: [1008], error: 'PROTOCOL_ERROR' };
  return { kind: 'listen', family: 'listen.multibyte', steps: [{ op: 'text', data }], expect };
}

/** Binary frames before any start. */
function binaryFirstCase(d: Draw, res: Resources): ListenCase {
  const n = d.pick([0, 1, 7, 100, 4096, 131072, 131073, 300_000, 600_000]);
  const ref = audioRef(d.pick(['webm', 'ogg', 'pcm'] as const), d.int(0, TRACKS - 1));
  const data: Piece[] =
    d.chance(0.5) && n > 0 ? [{ audio: ref, from: 0, to: n }] : [bytesPiece(d.bytes(Math.min(n, 4096))), ...(n > 4096 ? [{ fill: 0, n: n - 4096 }] : [])];
  const size = lengthOf(data, res);
  const steps: ListenStep[] = [{ op: 'binary', data }];
  if (d.chance(0.5)) steps.push({ op: 'text', data: validStart(d, d.pick(STREAM_FORMATS)) });
  // Over 512 KiB ws refuses the frame itself (1009, no error message); below, it is a protocol error.
  const expect = size > 512 * 1024 ? { close: [1009], error: null } : { close: [1008], error: 'PROTOCOL_ERROR' };
  return { kind: 'listen', family: 'listen.binary-first', steps, expect };
}

/** A start with random fields, then a little audio of its format or of another, then stop or nothing. */
function startCase(d: Draw, res: Resources): ListenCase {
  const steps: ListenStep[] = [{ op: 'text', data: randomStart(d) }];
  if (d.chance(0.6)) {
    const ref = audioRef(d.pick(['webm', 'ogg', 'pcm', 'mp3'] as const), d.int(0, TRACKS - 1));
    const len = audioOf(res, ref).length;
    for (let at = 0, k = d.int(1, 8); k > 0 && at < len; k--) {
      const to = Math.min(len, at + d.int(100, 8000));
      steps.push({ op: 'binary', data: [{ audio: ref, from: at, to }] }, { op: 'wait', ms: d.int(0, 250) });
      at = to;
    }
  }
  if (d.chance(0.7)) steps.push({ op: 'text', data: object([['type', str('stop')]]) });
  return { kind: 'listen', family: 'listen.start', steps };
}

/** A client that vanishes: at once, after the start, or in the middle of its audio. */
function abruptCase(d: Draw): ListenCase {
  const steps: ListenStep[] = [];
  if (d.chance(0.7)) {
    const format = d.pick(STREAM_FORMATS);
    steps.push({ op: 'text', data: validStart(d, format) });
    const ref = audioRef(CONTAINER_OF[format], d.int(0, TRACKS - 1));
    for (let at = 0, k = d.int(0, 6); k > 0; k--) {
      const to = at + d.int(200, 6000);
      steps.push({ op: 'binary', data: [{ audio: ref, from: at, to }] }, { op: 'wait', ms: d.int(0, 200) });
      at = to;
    }
  }
  steps.push({ op: 'wait', ms: d.int(0, 300) }, { op: 'destroy' });
  return { kind: 'listen', family: 'listen.abrupt', steps };
}

// --- HTTP ---------------------------------------------------------------------------------------

type Header = [string, Piece[]];
type Framing = 'length' | 'none' | 'short' | 'long' | 'chunked' | 'chunked-bad';

/** A raw HTTP/1.1 request; `framing` says how the body's end is told (or mis-told). */
function rawRequest(res: Resources, method: string, target: Piece[], headers: Header[], body: Piece[], framing: Framing): Piece[] {
  const len = lengthOf(body, res);
  const framed: Header[] =
    framing === 'length'
      ? [['Content-Length', [{ text: String(len) }]]]
      : framing === 'short'
        ? [['Content-Length', [{ text: String(Math.floor(len / 2)) }]]]
        : framing === 'long'
          ? [['Content-Length', [{ text: String(len + 1 + Math.floor(len / 3)) }]]]
          : framing === 'none'
            ? []
            : [['Transfer-Encoding', [{ text: 'chunked' }]]];
  const head: Piece[] = [{ text: `${method} ` }, ...target, { text: ' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' }];
  for (const [name, value] of [...headers, ...framed]) head.push({ text: `${name}: ` }, ...value, { text: '\r\n' });
  head.push({ text: '\r\n' });
  if (framing !== 'chunked' && framing !== 'chunked-bad') return merge([...head, ...body]);
  const chunked: Piece[] = len ? [{ text: `${len.toString(16)}\r\n` }, ...body, { text: '\r\n' }] : [];
  const tail = framing === 'chunked' ? '0\r\n\r\n' : '5\r\nab\r\nzz\r\n';
  return merge([...head, ...chunked, { text: tail }]);
}

const auth = (d: Draw): Header[] => (d.chance(0.9) ? [['Authorization', [{ text: 'Bearer ' }, { apiKey: true }]]] : []);

/** A file name made to break things: NUL and control characters, 5000 characters, multibyte, path components. */
function strangeFileName(d: Draw): string {
  return d.pick([
    () => `a\u0000b.wav`,
    () => `clip${d.pick(CONTROL)}${d.pick(CONTROL)}.mp3`,
    () => 'a'.repeat(5000),
    () => `${'€'.repeat(d.int(1, 300))}.ogg`,
    () => 'тест 日本語 😀.webm',
    () => '../../../../etc/passwd',
    () => '/abs/path/clip.wav',
    () => 'C:\\Windows\\system32\\clip.wav',
    () => 'a/b/../c.flac',
    () => d.pick(['', '.', '..', ' ', '.wav']),
    () => 'a"b\\"c.wav',
    () => 'x\r\nContent-Type: text/html',
    () => strangeText(d),
  ])();
}

/** The content of a file part: empty, random bytes, real audio whole, cut, flipped or headless. */
function fileContent(d: Draw, res: Resources): Piece[] {
  const ref = audioRef(d.pick(['wav', 'mp3', 'flac', 'aac', 'webm', 'ogg', 'vorbis', 'pcm'] as const), d.int(0, TRACKS - 1));
  const len = audioOf(res, ref).length;
  switch (d.int(0, 6)) {
    case 0:
      return [];
    case 1:
      return [bytesPiece(d.bytes(d.skewed(1, 20000)))];
    case 2:
      return [{ audio: ref, from: 0, to: len }];
    case 3:
      return [{ audio: ref, from: 0, to: d.skewed(1, len) }];
    case 4: {
      const flips = Array.from({ length: d.int(1, 32) }, () => d.int(0, len * 8 - 1));
      return [{ audio: ref, from: 0, to: len, flips }];
    }
    case 5:
      return [{ audio: ref, from: d.int(1, len - 1), to: len }];
    default:
      return [{ audio: ref, from: 0, to: d.pick([4, 12, 64, 200]) }];
  }
}

interface Part {
  head: Piece[];
  content: Piece[];
}

/** A file part; `sound` when its headers are the ordinary ones (a name, a plain file name and type). */
function filePart(d: Draw, res: Resources, field: string): Part & { sound: boolean } {
  const plainName = d.chance(0.6);
  const name = plainName ? d.pick(['clip.wav', 'clip.mp3', 'clip.webm', 'x']) : strangeFileName(d);
  const plainDisposition = d.chance(0.9);
  const disposition = plainDisposition
    ? `form-data; name="${field}"; filename=${JSON.stringify(name)}`
    : d.pick([`form-data; name="${field}"`, `form-data; name=${field}; filename*=UTF-8''%E2%82%AC%00.wav`, `attachment; filename="a.wav"`, 'form-data', '']);
  const plainType = d.chance(0.7);
  const type = plainType ? d.pick(['application/octet-stream', 'audio/wav', 'audio/mpeg', 'audio/webm', 'text/plain', 'image/png', '']) : strangeText(d);
  const head: Piece[] = [{ text: `Content-Disposition: ${disposition}\r\n` }];
  const typed = d.chance(0.8);
  if (typed) head.push({ text: `Content-Type: ${type}\r\n` });
  const extra = d.chance(0.1);
  if (extra) head.push({ text: d.pick(['Content-Transfer-Encoding: base64\r\n', `X-${strangeText(d)}: 1\r\n`, `${'H'.repeat(20000)}: x\r\n`]) });
  const sound = plainName && plainDisposition && (plainType || !typed) && !extra;
  return { head, content: fileContent(d, res), sound };
}

function fieldPart(name: string, value: string): Part {
  return { head: [{ text: `Content-Disposition: form-data; name=${JSON.stringify(name)}\r\n` }], content: [{ text: value }] };
}

/** The form fields besides the file: mode and max_results valid, invalid or strange, unknown fields. */
function formFields(d: Draw): { parts: Part[]; invalid: boolean } {
  const parts: Part[] = [];
  let invalid = false;
  if (d.chance(0.5)) {
    const bad = d.chance(0.3);
    invalid ||= bad;
    parts.push(fieldPart('mode', bad ? d.pick(['EXACT', 'none', '', 'é'.repeat(80), 'exact\u0000']) : d.pick(['exact', 'vibe', 'both'])));
  }
  if (d.chance(0.5)) {
    const bad = d.chance(0.3);
    invalid ||= bad;
    parts.push(fieldPart('max_results', bad ? d.pick(['0', '51', '-1', 'abc', '1.5', '100000']) : String(d.int(1, 50))));
  }
  if (d.chance(0.1)) parts.push(fieldPart(strangeText(d), strangeText(d)));
  return { parts, invalid };
}

/** Multipart with the parts given, its structure broken in one of several ways (or not). */
function multipart(d: Draw, boundary: string, parts: Part[], broken: boolean): Piece[] {
  const nl = broken && d.chance(0.2) ? '\n' : '\r\n';
  const out: Piece[] = [];
  if (broken && d.chance(0.2)) out.push({ text: `preamble ${strangeText(d)}${nl}` });
  const bodyBoundary = broken && d.chance(0.2) ? `${boundary}x` : boundary;
  for (const p of parts) {
    out.push({ text: `--${bodyBoundary}${nl}` }, ...p.head.map((h) => ('text' in h ? { text: h.text.replace(/\r\n/g, nl) } : h)), { text: nl }, ...p.content, {
      text: nl,
    });
  }
  if (!broken || d.chance(0.5)) out.push({ text: `--${bodyBoundary}--${nl}` });
  return merge(out);
}

const BOUNDARY = 'fuzzBoundary7MA4YWxkTrZu0gW';

/** POST to search or tracks with a multipart form: parts strange or broken, framing mis-told at times. */
function uploadCase(d: Draw, res: Resources, to: 'search' | 'tracks'): HttpCase {
  const field = to === 'search' ? 'audio' : 'file';
  const files = Array.from({ length: d.chance(0.85) ? 1 : d.int(0, 3) }, () => filePart(d, res, d.chance(0.95) ? field : strangeText(d)));
  const { parts: fields, invalid } = to === 'search' ? formFields(d) : { parts: [], invalid: false };
  const broken = d.chance(0.3);
  const parts = d.chance(0.5) ? [...files, ...fields] : [...fields, ...files];
  const body = multipart(d, BOUNDARY, parts, broken);
  const ctype =
    broken && d.chance(0.4)
      ? d.pick(['multipart/form-data', 'multipart/form-data; boundary=', `multipart/form-data; boundary="${BOUNDARY}`, `multipart/mixed; boundary=${BOUNDARY}`])
      : `multipart/form-data; boundary=${BOUNDARY}`;
  const framing: Framing = d.chance(0.85) ? 'length' : d.pick(['none', 'short', 'long', 'chunked', 'chunked-bad'] as const);
  const headers: Header[] = [['Content-Type', [{ text: ctype }]], ...(to === 'tracks' ? auth(d) : [])];
  const request = rawRequest(res, 'POST', [{ text: `/api/v1/${to}` }], headers, body, framing);
  // A body whose announced length is longer than what is sent can only end by the client going away.
  const after: HttpCase['after'] =
    framing === 'long' || framing === 'chunked-bad' ? (d.chance(0.5) ? 'half-close' : { destroyAfterMs: d.int(0, 500) }) : 'wait';
  // A well-formed search whose form fields are invalid is a 400 naming the field, before any audio is read.
  const plain = !broken && framing === 'length' && files.length === 1 && files[0]!.sound;
  const expect = to === 'search' && invalid && plain ? { expect: { status: [400], code: 'INVALID_ARGUMENT' } } : {};
  return { kind: 'http', family: `http.${to}-multipart`, request, after, ...expect };
}

/** Bodies of other kinds, or none, with any content type, to the upload endpoints. */
function otherBodyCase(d: Draw, res: Resources): HttpCase {
  const to = d.pick(['search', 'tracks']);
  const ctype = d.pick([
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'audio/wav',
    'application/octet-stream',
    '',
    strangeText(d),
    'multipart/form-data; boundary=a; boundary=b',
    `multipart/form-data; boundary=${'b'.repeat(200)}`,
  ]);
  const body: Piece[] = d.pick([
    () => jsonValue(d),
    () => [{ text: 'audio=abc&mode=exact' }],
    () => fileContent(d, res),
    () => [bytesPiece(d.bytes(d.skewed(0, 5000)))],
    () => [],
  ])();
  const headers: Header[] = d.chance(0.85) ? [['Content-Type', [{ text: ctype }]]] : [];
  const framing: Framing = d.chance(0.8) ? 'length' : d.pick(['none', 'chunked'] as const);
  const request = rawRequest(
    res,
    d.chance(0.9) ? 'POST' : d.pick(['PUT', 'PATCH', 'GET']),
    [{ text: `/api/v1/${to}` }],
    [...headers, ...(to === 'tracks' ? auth(d) : [])],
    body,
    framing,
  );
  return { kind: 'http', family: 'http.other-body', request, after: 'wait' };
}

/** Header values of every strange sort on an otherwise sound upload. */
function headersCase(d: Draw, res: Resources): HttpCase {
  const to = d.pick(['search', 'tracks']);
  const body = multipart(d, BOUNDARY, [filePart(d, res, to === 'search' ? 'audio' : 'file')], false);
  const strangeHeaders: Header[] = Array.from({ length: d.int(1, 4) }, () =>
    d.pick([
      (): Header => [
        'Authorization',
        [{ text: d.pick(['Bearer', 'Bearer ', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l', `Bearer ${'k'.repeat(9000)}`, `Bearer ${'€'.repeat(30)}`]) }],
      ],
      (): Header => ['Authorization', [{ text: 'Bearer  ' }, { apiKey: true }, { text: d.pick([' ', '\t', 'x', '']) }]],
      (): Header => ['X-Forwarded-For', [{ text: d.pick(['1.2.3.4, 5.6.7.8', 'garbage', '', '::1', '€'.repeat(10)]) }]],
      (): Header => ['Expect', [{ text: d.pick(['100-continue', 'something-else']) }]],
      (): Header => ['Content-Encoding', [{ text: d.pick(['gzip', 'br', 'identity', 'x']) }]],
      (): Header => [d.pick(['X-Test', 'Accept', 'Accept-Language', 'Cookie']), [bytesPiece(Buffer.from(strangeText(d)))]],
      (): Header => ['Content-Type', [{ text: `multipart/form-data; boundary=${BOUNDARY}; charset=${strangeText(d)}` }]],
    ])(),
  );
  const headers: Header[] = [['Content-Type', [{ text: `multipart/form-data; boundary=${BOUNDARY}` }]], ...(to === 'tracks' ? auth(d) : []), ...strangeHeaders];
  const request = rawRequest(res, 'POST', [{ text: `/api/v1/${to}` }], headers, body, 'length');
  return { kind: 'http', family: 'http.headers', request, after: 'wait' };
}

/** Upload without the right key: 401, whatever the body. */
function authCase(d: Draw, res: Resources): HttpCase {
  const body = multipart(d, BOUNDARY, [filePart(d, res, 'file')], false);
  const key: Header[] = d.pick([[], [['Authorization', [{ text: d.pick(['Bearer wrong-key-0123456789', 'Bearer', 'Token x', '']) }]]]] as Header[][]);
  const request = rawRequest(
    res,
    'POST',
    [{ text: '/api/v1/tracks' }],
    [['Content-Type', [{ text: `multipart/form-data; boundary=${BOUNDARY}` }]], ...key],
    body,
    'length',
  );
  return { kind: 'http', family: 'http.auth', request, after: 'wait', expect: { status: [401], code: 'UNAUTHORIZED' } };
}

/** A search upload over its 10 MB limit: 413 while the body streams in. */
function oversizeCase(d: Draw, res: Resources): HttpCase {
  const parts: Part[] = [
    {
      head: [{ text: 'Content-Disposition: form-data; name="audio"; filename="big.wav"\r\n' }],
      content: [{ fill: d.int(0, 255), n: 10 * 2 ** 20 + d.int(70_000, 2 ** 20) }],
    },
  ];
  const framing: Framing = d.pick(['length', 'chunked'] as const);
  const request = rawRequest(
    res,
    'POST',
    [{ text: '/api/v1/search' }],
    [['Content-Type', [{ text: `multipart/form-data; boundary=${BOUNDARY}` }]]],
    multipart(d, BOUNDARY, parts, false),
    framing,
  );
  return { kind: 'http', family: 'http.oversize', request, after: 'wait', expect: { status: [413], code: 'FILE_TOO_LARGE' } };
}

const percentJunk = ['%00', '%ff', '%e2%82', '%2e%2e%2f', '%zz', '%', '%25', '%C3%A9', '+', '%20', '..', '//'];

function strangeId(d: Draw): Piece[] {
  return d.pick([
    (): Piece[] => [{ trackId: d.int(0, TRACKS - 1) }],
    (): Piece[] => [{ text: '00000000-0000-4000-8000-000000000000' }],
    (): Piece[] => [{ text: 'ffffffff-ffff-ffff-ffff-ffffffffffff' }],
    (): Piece[] => [{ text: d.pick(['abc', '1', '-1', 'null', 'undefined', '0x10', "'; DROP TABLE tracks; --", '$1']) }],
    (): Piece[] => [{ text: Array.from({ length: d.int(1, 6) }, () => d.pick(percentJunk)).join('') }],
    (): Piece[] => [{ fill: 0x61, n: d.pick([100, 5000, 70_000]) }],
    (): Piece[] => [{ trackId: 0 }, { text: d.pick(['x', '0', '/', '%00', ' ']) }],
    (): Piece[] => [{ text: encodeURIComponent(strangeText(d)) }],
  ])();
}

function strangeQuery(d: Draw): Piece[] {
  const pairs = Array.from({ length: d.int(1, 4) }, () => {
    const k = d.pick(['limit', 'offset', 'q', 'x', '', 'limit[]']);
    const v = d.pick([
      () => String(d.pick([0, 1, 50, 200, 201, -1, 1e20, 1.5])),
      () => d.pick(['abc', '', 'NaN', 'Infinity', '0x10', '1e3']),
      () => d.pick(percentJunk),
      () => encodeURIComponent(strangeText(d)),
      () => 'a'.repeat(d.pick([10, 5000])),
    ])();
    return `${k}=${v}`;
  });
  return [{ text: `?${pairs.join('&')}` }];
}

/** GET and DELETE with strange ids and query strings, other methods, other paths. */
function idsCase(d: Draw, res: Resources): HttpCase {
  const k = d.int(0, 5);
  let method = 'GET';
  let target: Piece[];
  const headers: Header[] = [];
  let expect: HttpExpect | undefined;
  if (k === 0) {
    target = [{ text: '/api/v1/tracks' }, ...strangeQuery(d)];
  } else if (k === 1) {
    const limit = d.pick(['0', '201', '-1', 'abc']);
    target = [{ text: `/api/v1/tracks?limit=${limit}` }];
    expect = { status: [400], code: 'INVALID_ARGUMENT' };
  } else if (k === 2 || k === 3) {
    method = k === 2 ? 'GET' : 'DELETE';
    const id = strangeId(d);
    target = [{ text: '/api/v1/tracks/' }, ...id];
    // The harness's own tracks stay (the other cases search for them): deleting one without the key is a 401.
    const own = id.length === 1 && 'trackId' in id[0]!;
    if (method === 'DELETE' && own) expect = { status: [401], code: 'UNAUTHORIZED' };
    else if (method === 'DELETE' && d.chance(0.8)) headers.push(...auth(d));
  } else if (k === 4) {
    method = d.pick(['OPTIONS', 'PATCH', 'PUT', 'HEAD', 'TRACE', 'FOO']);
    target = [{ text: d.pick(['/api/v1/tracks', '/api/v1/search', '/api/v1/duplicates', '/api/v1/listen']) }];
  } else {
    target = [{ text: d.pick(['/api/v1/duplicates', '/api/v1/', '/api/v2/tracks', '/api/v1/tracks/', '/api/v1/tracks//x', '/api/v1/search']) }];
    if (d.chance(0.5)) target.push(...strangeQuery(d));
  }
  return { kind: 'http', family: 'http.ids', request: rawRequest(res, method, target, headers, [], 'none'), after: 'wait', ...(expect ? { expect } : {}) };
}

interface Family {
  name: string;
  weight: number;
  make: (d: Draw, res: Resources) => FuzzCase;
}

export const FAMILIES: Family[] = [
  { name: 'listen.text', weight: 12, make: (d) => textCase(d) },
  { name: 'listen.multibyte', weight: 4, make: (d) => multibyteCase(d) },
  { name: 'listen.binary-first', weight: 5, make: binaryFirstCase },
  { name: 'listen.start', weight: 10, make: startCase },
  { name: 'listen.stream', weight: 20, make: streamCase },
  { name: 'listen.abrupt', weight: 6, make: (d) => abruptCase(d) },
  { name: 'http.search-multipart', weight: 12, make: (d, res) => uploadCase(d, res, 'search') },
  { name: 'http.tracks-multipart', weight: 6, make: (d, res) => uploadCase(d, res, 'tracks') },
  { name: 'http.other-body', weight: 6, make: otherBodyCase },
  { name: 'http.headers', weight: 5, make: headersCase },
  { name: 'http.auth', weight: 2, make: authCase },
  { name: 'http.oversize', weight: 1, make: oversizeCase },
  { name: 'http.ids', weight: 10, make: idsCase },
];

/** Case `index` of `seed`. */
export function generate(seed: number, index: number, res: Resources): FuzzCase {
  const d = new Draw(rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0));
  return d.weighted(FAMILIES).make(d, res);
}
