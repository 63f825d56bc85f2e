// Audio container detection from the first bytes of the content, never from a name or header.

export type AudioFormat = 'wav' | 'mp3' | 'ogg' | 'flac' | 'webm' | 'mp4' | 'aac';

/** Bytes needed to recognise every format below (an ID3 tag is taken for MP3 without looking past it). */
export const SNIFF_BYTES = 64;

export function sniffFormat(head: Uint8Array): AudioFormat | null {
  const ascii = (at: number, s: string) => head.length >= at + s.length && [...s].every((ch, i) => head[at + i] === ch.charCodeAt(0));
  if (ascii(0, 'RIFF') && ascii(8, 'WAVE')) return 'wav';
  if (ascii(0, 'OggS')) return 'ogg';
  if (ascii(0, 'fLaC')) return 'flac';
  if (ascii(0, 'ID3')) return 'mp3';
  if (head.length >= 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return 'webm';
  if (ascii(4, 'ftyp')) return 'mp4';
  if (head.length >= 2 && head[0] === 0xff && (head[1]! & 0xf6) === 0xf0) return 'aac'; // ADTS
  if (head.length >= 2 && head[0] === 0xff && (head[1]! & 0xe0) === 0xe0) return 'mp3'; // MPEG frame sync
  return null;
}
