// The listening protocol on /api/v1/listen: client messages validated with zod, server messages
// typed. Every text message is a JSON object whose `type` names it; audio travels as binary.
import { z } from 'zod';
import { STREAM_FORMATS } from '../audio/stream-decoder.js';
import type { ExactMatch, VibeMatch } from './schemas.js';

export const StartMessage = z
  .object({
    type: z.literal('start'),
    format: z.enum(STREAM_FORMATS),
    /** Required for pcm-f32le: the rate of the float samples sent. */
    sample_rate: z.number().int().min(8000).max(192000).optional(),
    mode: z.enum(['exact', 'vibe', 'both']).default('exact'),
    max_results: z.number().int().min(1).max(50).default(3),
    continuous: z.boolean().default(false),
  })
  .strict()
  .refine((m) => m.format !== 'pcm-f32le' || m.sample_rate !== undefined, { message: 'sample_rate is required with format pcm-f32le', path: ['sample_rate'] });

export const StopMessage = z.object({ type: z.literal('stop') }).strict();

export type Start = z.infer<typeof StartMessage>;

export interface LiveMatch extends z.infer<typeof ExactMatch> {
  /** Where in the track the audio heard now is: moves along while the match holds. */
  position_seconds: number;
}

export type ServerMessage =
  | {
      type: 'ready';
      session_id: string;
      limits: { max_seconds: number | null; max_chunk_bytes: number; idle_seconds: number };
      lanes: { exact: 'on' | 'off'; vibe: 'on' | 'off' };
    }
  | {
      type: 'result';
      lane: 'exact';
      status: 'provisional' | 'final';
      heard_seconds: number;
      matches: LiveMatch[];
      /** Continuous sessions: stream time at which this track began (a change of track). */
      changed_at_seconds?: number;
    }
  | {
      type: 'result';
      lane: 'vibe';
      /** Provisional while successive windows disagree on the closest track; final once two agree. */
      status: 'provisional' | 'final';
      heard_seconds: number;
      matches: z.infer<typeof VibeMatch>[];
    }
  | { type: 'no_match'; heard_seconds: number }
  | { type: 'error'; code: string; message: string };
