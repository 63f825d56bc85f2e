// The shapes of the HTTP API, in zod: they validate requests, type the handlers and generate the
// OpenAPI document.
import { z } from '@hono/zod-openapi';
import type { Track } from '../catalog/catalog.js';
import type { TrackMatch, TrackVibeMatch } from '../engine/engine.js';

export const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');

export const TrackInfo = z
  .object({
    id: z.string().uuid(),
    title: z.string(),
    artist: z.string().nullable(),
    album: z.string().nullable(),
    duration_seconds: z.number(),
    file_name: z.string(),
    format: z.string(),
    file_size_bytes: z.number().int(),
    sample_rate: z.number().int().nullable(),
    channels: z.number().int().nullable(),
    bitrate: z.number().int().nullable(),
    ingested_at: z.string().datetime(),
  })
  .openapi('TrackInfo');

export const ExactMatch = z
  .object({
    track: TrackInfo,
    confidence: z.number().min(0).max(1),
    offset_seconds: z.number(),
    aligned_hashes: z.number().int(),
    time_scale: z
      .number()
      .openapi({ description: 'Track time per recording time: 1.03 when the recording plays 3% fast (a speed or tempo change), 1 when unchanged' }),
    pitch_shift_cents: z
      .number()
      .int()
      .openapi({ description: 'How far the recording is transposed from the track, in cents: about +51 at speed 1.03, 0 when unchanged' }),
  })
  .openapi('ExactMatch');

export const VibeMatch = z
  .object({
    track: TrackInfo,
    similarity: z.number().min(0).max(1).openapi({ description: 'Cosine similarity of the clip to the closest 10 s chunk of the track, clamped to [0, 1]' }),
    embedding_model: z.string(),
    tags: z.array(z.string()).max(3).openapi({ description: "The matched track's strongest tags by the model, strongest first ([] for a model without tags)" }),
  })
  .openapi('VibeMatch');

export const SearchMode = z.enum(['exact', 'vibe', 'both']);

/** A file part: the server streams it to a file itself, so this schema only documents it. */
const binary = (description?: string) => z.string().openapi({ format: 'binary', ...(description ? { description } : {}) });

/** The search form's fields other than the audio, as validated. */
export const SearchFields = z.object({
  mode: SearchMode.default('both'),
  max_results: z.coerce.number().int().min(1).max(50).default(10),
});

export const SearchForm = z.object({
  audio: binary('Audio clip (WebM/Opus, Ogg, MP3, MP4/AAC, WAV, FLAC), at most 10 MB; 3 s at least, first 30 s used'),
  ...SearchFields.shape,
});

export const SearchResponse = z
  .object({
    request_id: z.string().uuid(),
    query_duration_ms: z.number(),
    exact_matches: z.array(ExactMatch),
    vibe_matches: z.array(VibeMatch),
    mode_used: SearchMode,
    lanes: z
      .object({
        exact: z.enum(['ran', 'skipped', 'failed', 'timeout']),
        vibe: z.enum(['ran', 'skipped', 'unavailable', 'failed', 'timeout']),
      })
      .openapi({
        description:
          'What each lane did: skipped (not asked for), unavailable (no embedding model loaded), failed, timeout (exact 3 s, vibe 4 s); ' +
          'in mode both one lane failing leaves the other standing',
      }),
  })
  .openapi('SearchResponse');

export const TrackUploadForm = z.object({ file: z.union([binary(), z.array(binary()).min(1)]) });

export const DuplicateOf = z.object({
  id: z.string().uuid(),
  reason: z.enum(['same_file', 'same_recording']),
  confidence: z.number().min(0).max(1),
});

export const TrackUploadResponse = z
  .object({
    tracks: z.array(
      z.object({
        file_name: z.string(),
        status: z.enum(['created', 'duplicate', 'failed']),
        track: TrackInfo.optional(),
        duplicate_of: DuplicateOf.optional(),
        error: ErrorBody.shape.error.optional(),
      }),
    ),
  })
  .openapi('TrackUploadResponse');

export const TrackListQuery = z.object({
  q: z
    .string()
    .max(200)
    .regex(/^\P{Cc}*$/u, 'must not hold control characters')
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

const metadataText = z
  .string()
  .trim()
  .max(500)
  .refine((s) => s.replace(/\p{Cc}/gu, '').trim() !== '', 'must have printable text');
/** A correction of a track's metadata: at least one field; null clears artist or album. */
export const TrackPatch = z
  .object({ title: metadataText.optional(), artist: metadataText.nullable().optional(), album: metadataText.nullable().optional() })
  .strict()
  .refine((p) => p.title !== undefined || p.artist !== undefined || p.album !== undefined, 'give title, artist or album')
  .openapi('TrackPatch');

export const TrackList = z
  .object({ tracks: z.array(TrackInfo), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })
  .openapi('TrackList');

export const DuplicateReports = z
  .object({
    reports: z.array(
      z.object({
        file_name: z.string(),
        sha256: z.string(),
        duplicate_of: z.string().uuid(),
        reason: DuplicateOf.shape.reason,
        confidence: z.number(),
        reported_at: z.string(),
      }),
    ),
  })
  .openapi('DuplicateReports');

export const Liveness = z.object({ status: z.literal('ok') }).openapi('Liveness');

export const Readiness = z
  .object({
    status: z.enum(['ok', 'not_ready']),
    checks: z.object({ catalog: z.string(), index: z.string() }),
  })
  .openapi('Readiness');

export const Health = z
  .object({
    status: z.enum(['ok', 'degraded']),
    checks: z.object({
      catalog: z.string(),
      index: z.string(),
      ffmpeg: z.string(),
      vibe: z.string().openapi({ description: 'The vibe lane: ok (model, store, tracks with vectors), off (why), or error' }),
    }),
  })
  .openapi('Health');

export function trackInfo(t: Track): z.infer<typeof TrackInfo> {
  return {
    id: t.id,
    title: t.title,
    artist: t.artist,
    album: t.album,
    duration_seconds: t.duration_seconds,
    file_name: t.file_name,
    format: t.format,
    file_size_bytes: t.file_size_bytes,
    sample_rate: t.sample_rate,
    channels: t.channels,
    bitrate: t.bitrate,
    ingested_at: t.ingested_at,
  };
}

export function exactMatch(m: TrackMatch): z.infer<typeof ExactMatch> {
  return {
    track: trackInfo(m.track),
    confidence: Math.round(m.confidence * 1000) / 1000,
    offset_seconds: Math.round(m.offsetSeconds * 100) / 100,
    aligned_hashes: m.alignedHashes,
    time_scale: Math.round(m.timeScale * 1000) / 1000,
    pitch_shift_cents: Math.round(m.pitchShiftCents),
  };
}

export function vibeMatch(m: TrackVibeMatch): z.infer<typeof VibeMatch> {
  return {
    track: trackInfo(m.track),
    similarity: Math.round(m.similarity * 1000) / 1000,
    embedding_model: m.embeddingModel,
    tags: m.track.vibe_tags.slice(0, 3),
  };
}
