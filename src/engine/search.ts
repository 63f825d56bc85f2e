// A search of an uploaded clip: decoded (and for the exact lane matched) in a matching thread; the
// clip comes back decoded, its matches later. The lanes run side by side from there, each within
// its own time; in mode both, one lane failing or running late leaves the other's answer standing.
import { AppError, publicError } from '../base/errors.js';
import type { MatchThreads } from '../exact/match-threads.js';
import type { Match } from '../exact/matcher.js';
import type { TrackMatch, TrackVibeMatch } from './engine.js';

export type SearchMode = 'exact' | 'vibe' | 'both';
/** How a lane did: the vibe lane may also be unavailable (no model in this server). */
export type LaneStatus = 'ran' | 'failed' | 'timeout' | 'skipped';

export interface SearchOptions {
  /** The upload's name, for errors. */
  label: string;
  mode: SearchMode;
  maxResults: number;
  /** For the log of a lane's internal failure. */
  requestId: string;
}

export interface SearchOutcome {
  exact: TrackMatch[];
  vibe: TrackVibeMatch[];
  lanes: { exact: LaneStatus; vibe: LaneStatus | 'unavailable' };
}

/** Each lane's time (exact 3 s, vibe 4 s: within 5 s in all). */
const LANE_TIMEOUT_MS = { exact: 3000, vibe: 4000 };

/** What a search needs of the engine. */
export interface SearchParts {
  threads: MatchThreads;
  resolve(m: Match[]): Promise<TrackMatch[]>;
  /** The vibe lane's search, when it runs. */
  vibe: ((pcm: Float32Array, k: number) => Promise<TrackVibeMatch[]>) | undefined;
}

/** Searches the clip saved at `file`, which the matching thread has read once the promise settles. */
export async function searchClip(parts: SearchParts, file: string, o: SearchOptions): Promise<SearchOutcome> {
  const vibeSearch = o.mode === 'exact' ? undefined : parts.vibe;
  const { matches, pcm } = await parts.threads.clip(file, { label: o.label, maxResults: o.maxResults, exact: o.mode !== 'vibe', keepPcm: !!vibeSearch });
  const [exact, vibe] = await Promise.all([
    matches ? runLane('exact', async () => parts.resolve(await matches), o.requestId) : undefined,
    pcm && vibeSearch ? runLane('vibe', () => vibeSearch(pcm, o.maxResults), o.requestId) : undefined,
  ]);
  if (o.mode !== 'both') {
    const only = (exact ?? vibe)!;
    if (only.status !== 'ran') throw only.error;
  }
  return {
    exact: exact?.status === 'ran' ? exact.value : [],
    vibe: vibe?.status === 'ran' ? vibe.value : [],
    lanes: { exact: exact?.status ?? 'skipped', vibe: vibe?.status ?? (o.mode === 'exact' ? 'skipped' : 'unavailable') },
  };
}

type LaneResult<T> = { status: 'ran'; value: T } | { status: 'failed' | 'timeout'; error: AppError };

/** Runs one search lane within its time; what went wrong is returned, not thrown. */
async function runLane<T>(lane: keyof typeof LANE_TIMEOUT_MS, fn: () => Promise<T>, requestId: string): Promise<LaneResult<T>> {
  const timeoutMs = LANE_TIMEOUT_MS[lane];
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<LaneResult<T>>((resolve) => {
    timer = setTimeout(
      () => resolve({ status: 'timeout', error: new AppError('TIMEOUT', `the ${lane} lane took longer than ${timeoutMs / 1000} s`) }),
      timeoutMs,
    );
  });
  const work = fn().then(
    (value): LaneResult<T> => ({ status: 'ran', value }),
    (e: unknown): LaneResult<T> => {
      const { code, message } = publicError(e, { requestId, lane });
      return { status: 'failed', error: new AppError(code, message, { logged: true }) };
    },
  );
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
