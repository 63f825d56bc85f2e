// Client-controlled text on its way into messages, close reasons and logs: bounded, cut between
// characters (never inside a UTF-8 sequence or a surrogate pair) and escaped.

const ELLIPSIS = '…';

/** At most `max` characters (code points) of `s`, with an ellipsis when cut. */
export function clip(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length <= max ? s : chars.slice(0, Math.max(0, max - 1)).join('') + ELLIPSIS;
}

/** Text from a file's tags or a client for the catalog: no control characters (PostgreSQL refuses a NUL), at most `max` characters. */
export function printable(s: string, max: number): string {
  return clip(s.replace(/\p{Cc}/gu, ''), max);
}

/**
 * A client's value for a message: a string JSON-escaped (controls and quotes) and cut to `max`
 * characters; an object or array only named, never serialised (it may nest deeper than the stack).
 */
export function quote(value: unknown, max = 40): string {
  if (typeof value === 'string') return JSON.stringify(clip(value, max));
  if (value === null || typeof value !== 'object') return clip(String(value), max);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** `s` in at most `maxBytes` of UTF-8, cut before the first character that does not fit. */
export function utf8Prefix(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let bytes = 0;
  let out = '';
  const room = maxBytes - Buffer.byteLength(ELLIPSIS);
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > room) break;
    out += ch;
  }
  return out + ELLIPSIS;
}
