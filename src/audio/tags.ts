// Title, artist and album from the file's tags; the title falls back to the file name.
import path from 'node:path';
import { parseFile } from 'music-metadata';

export interface Tags {
  title: string;
  artist: string | null;
  album: string | null;
  sample_rate: number | null;
  channels: number | null;
  bitrate: number | null;
}

export async function readTags(file: string, name = path.basename(file)): Promise<Tags> {
  const fallback = path.basename(name, path.extname(name));
  try {
    const { common, format } = await parseFile(file, { duration: false, skipCovers: true });
    const int = (v: number | undefined) => (v && Number.isFinite(v) ? Math.round(v) : null);
    return {
      title: common.title?.trim() || fallback,
      artist: common.artist?.trim() || null,
      album: common.album?.trim() || null,
      sample_rate: int(format.sampleRate),
      channels: int(format.numberOfChannels),
      bitrate: int(format.bitrate),
    };
  } catch {
    // Unreadable tags are not an error: the audio decides whether the file is usable.
    return { title: fallback, artist: null, album: null, sample_rate: null, channels: null, bitrate: null };
  }
}
