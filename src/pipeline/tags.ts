// Title, artist and album from the file's tags; the title falls back to the file name.
import path from 'node:path';
import { parseFile } from 'music-metadata';

export interface Tags {
  title: string;
  artist: string | null;
  album: string | null;
}

export async function readTags(file: string): Promise<Tags> {
  const fallback = path.basename(file, path.extname(file));
  try {
    const { common } = await parseFile(file, { duration: false, skipCovers: true });
    return {
      title: common.title?.trim() || fallback,
      artist: common.artist?.trim() || null,
      album: common.album?.trim() || null,
    };
  } catch {
    // Unreadable tags are not an error: the audio decides whether the file is usable.
    return { title: fallback, artist: null, album: null };
  }
}
