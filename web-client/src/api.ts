// The server's shapes as the pages use them, and the one place that turns error codes and close
// codes into sentences a person can act on.

export interface Track {
  id: string;
  title: string;
  artist: string | null;
  album: string | null;
  duration_seconds: number;
  file_name: string;
}

export interface ExactMatch {
  track: Track;
  confidence: number;
  offset_seconds: number;
  /** Live results only: where in the track the audio heard now is. */
  position_seconds?: number;
}

export interface VibeMatch {
  track: Track;
  similarity: number;
  embedding_model: string;
  tags: string[];
}

export type Status = 'provisional' | 'final';

export interface SearchResponse {
  exact_matches: ExactMatch[];
  vibe_matches: VibeMatch[];
  lanes: { exact: string; vibe: string };
}

export type ServerMessage =
  | { type: 'ready'; lanes: { exact: string; vibe: string }; limits: { max_seconds: number | null } }
  | { type: 'result'; lane: 'exact'; status: Status; heard_seconds: number; matches: ExactMatch[]; changed_at_seconds?: number }
  | { type: 'result'; lane: 'vibe'; status: Status; heard_seconds: number; matches: VibeMatch[] }
  | { type: 'no_match'; heard_seconds: number }
  | { type: 'error'; code: string; message: string };

export interface ApiError {
  code: string;
  message: string;
}

const SENTENCES: Record<string, string> = {
  FILE_TOO_LARGE: 'That file is too large for the server.',
  UNSUPPORTED_FORMAT: 'That file is not in an audio format the server accepts (WebM or Ogg Opus, MP3, MP4/AAC, WAV, FLAC).',
  DECODE_FAILED: 'The audio could not be decoded: the file may be damaged or not really audio.',
  AUDIO_TOO_SHORT: 'The recording is too short: it needs at least 3 seconds of audio.',
  UNAUTHORIZED: 'The server needs its API key for this, and the key given is missing or wrong.',
  TRACK_NOT_FOUND: 'That track is no longer in the catalog.',
  INVALID_ARGUMENT: 'The server did not accept the request.',
  PROTOCOL_ERROR: 'The page and the server disagreed about the listening protocol.',
  LANE_UNAVAILABLE: 'That kind of search is not available on this server.',
  CHUNK_TOO_LARGE: 'The browser sent more audio at once than the server accepts.',
  TOO_FAST: 'Audio arrived faster than real time, so the server stopped listening.',
  IDLE_TIMEOUT: 'No audio reached the server for a while, so it stopped listening.',
  START_TIMEOUT: 'The listening session did not start in time. Please try again.',
  TOO_SLOW: 'Audio reached the server too slowly to listen live: the network may be weak.',
  TOO_MANY_SESSIONS: 'Too many listening sessions are open from this network. Please close one and try again.',
  UNSUPPORTED_MEDIA_TYPE: 'The server did not accept the upload: it must be sent as a form.',
  STORAGE_ERROR: 'The server cannot store files right now (its disk is full or not writable).',
  OVERLOADED: 'The server is busy with other listeners right now. Please try again in a moment.',
  SHUTTING_DOWN: 'The server is restarting. Please try again in a moment.',
  DATABASE_UNAVAILABLE: 'The catalog database is not reachable right now. Please try again later.',
  TIMEOUT: 'The server took too long to answer. Please try again.',
};

/** A sentence for an API error; the server's own message only where it adds the detail (which field, which file). */
export function explain(e: ApiError): string {
  const known = SENTENCES[e.code];
  if (e.code === 'FILE_TOO_LARGE' || e.code === 'INVALID_ARGUMENT') return `${known} (${e.message})`;
  return known ?? `Something went wrong on the server: ${e.message}.`;
}

const CLOSE_CODES: Record<number, string> = {
  1001: SENTENCES.SHUTTING_DOWN!,
  1003: 'The server cannot decode the audio format this browser records.',
  1006: 'The connection to the server was lost.',
  1007: 'The server could not decode the audio this browser sent.',
  1008: SENTENCES.PROTOCOL_ERROR!,
  1009: SENTENCES.CHUNK_TOO_LARGE!,
  1011: 'The server ran into an internal error while listening.',
  1013: SENTENCES.OVERLOADED!,
  4408: SENTENCES.IDLE_TIMEOUT!,
  4409: SENTENCES.TOO_SLOW!,
  4429: SENTENCES.TOO_FAST!,
  4430: SENTENCES.TOO_MANY_SESSIONS!,
};

/** A sentence for a WebSocket close that was not a normal end (an `error` message, when one came, says more). */
export function explainClose(code: number, reason: string): string {
  return CLOSE_CODES[code] ?? `The listening session ended unexpectedly${reason ? `: ${reason}` : ''}.`;
}

/** The error body of a failed response, or a made-up one naming the HTTP status. */
export async function errorOf(res: { status: number; text(): Promise<string> }): Promise<ApiError> {
  const body = await res.text().catch(() => '');
  return parseError(res.status, body);
}

export function parseError(status: number, body: string): ApiError {
  try {
    const e = (JSON.parse(body) as { error?: ApiError }).error;
    if (e?.code) return e;
  } catch {
    // not JSON: a proxy's page, say
  }
  return { code: `HTTP_${status}`, message: `the server answered with status ${status}` };
}

/** 83.4 -> "1:23". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export const percent = (x: number) => `${Math.round(x * 100)}%`;

export function byline(t: Track): string {
  return [t.artist, t.album].filter(Boolean).join(' · ');
}
