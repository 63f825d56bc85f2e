// Format detection from hand-built headers: only the content decides, never a name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SNIFF_BYTES, sniffFormat } from '../../src/audio/sniff.js';

/** Bytes from ASCII strings and byte values, padded with zeros to SNIFF_BYTES. */
function head(...parts: (string | number[])[]): Uint8Array {
  const bytes = parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p));
  const out = new Uint8Array(Math.max(SNIFF_BYTES, bytes.length));
  out.set(bytes);
  return out;
}

const u32le = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

describe('sniffFormat', () => {
  it('recognises WAV from RIFF....WAVE, but not another RIFF type', () => {
    assert.equal(sniffFormat(head('RIFF', u32le(36), 'WAVEfmt ')), 'wav');
    assert.equal(sniffFormat(head('RIFF', u32le(36), 'AVI LIST')), null);
  });

  it('recognises Ogg pages, whether Opus or Vorbis inside', () => {
    // Page header: capture pattern, version, type (BOS), granule, serial, sequence, crc, 1 segment.
    const page = (packet: (string | number[])[]) => head('OggS', [0, 2], [0, 0, 0, 0, 0, 0, 0, 0], u32le(1), u32le(0), u32le(0), [1, 19], ...packet);
    assert.equal(sniffFormat(page(['OpusHead', [1, 2, 0x38, 1, 0x80, 0xbb, 0, 0]])), 'ogg');
    assert.equal(sniffFormat(page([[1], 'vorbis', u32le(0)])), 'ogg');
  });

  it('recognises WebM by its EBML magic', () => {
    // EBML header element, size, then DocType "webm".
    assert.equal(sniffFormat(head([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x84], 'webm')), 'webm');
    assert.equal(sniffFormat(head([0x1a, 0x45, 0xdf, 0xa4])), null);
  });

  it('recognises MP3 by an ID3 tag or by MPEG audio frame sync', () => {
    assert.equal(sniffFormat(head('ID3', [4, 0, 0, 0, 0, 0x10, 0])), 'mp3');
    assert.equal(sniffFormat(head([0xff, 0xfb, 0x90, 0x64])), 'mp3'); // MPEG-1 layer III
    assert.equal(sniffFormat(head([0xff, 0xf3, 0x48, 0xc4])), 'mp3'); // MPEG-2 layer III
  });

  it('tells ADTS AAC (layer 00) from MPEG audio frame sync', () => {
    assert.equal(sniffFormat(head([0xff, 0xf1, 0x50, 0x80])), 'aac'); // MPEG-4, no CRC
    assert.equal(sniffFormat(head([0xff, 0xf9, 0x50, 0x80])), 'aac'); // MPEG-2
  });

  it('recognises FLAC and MP4 (ftyp at byte 4)', () => {
    assert.equal(sniffFormat(head('fLaC', [0, 0, 0, 34])), 'flac');
    assert.equal(sniffFormat(head(u32le(0x20000000), 'ftypM4A ', [0, 0, 0, 0], 'M4A isom')), 'mp4');
    assert.equal(sniffFormat(head('ftyp')), null); // ftyp must follow the box size
  });

  it('answers null for garbage, text, empty and truncated input', () => {
    assert.equal(sniffFormat(new Uint8Array(0)), null);
    assert.equal(sniffFormat(head('hello, this is not audio')), null);
    assert.equal(sniffFormat(head('<!DOCTYPE html><html>')), null);
    assert.equal(sniffFormat(head([0xff, 0x00, 0x12, 0x34])), null); // 0xff without frame sync
    assert.equal(sniffFormat(head([0x89], 'PNG\r\n')), null);
    assert.equal(sniffFormat(Uint8Array.from([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x41])), null); // RIFF....WA
    assert.equal(sniffFormat(Uint8Array.from([0x4f, 0x67, 0x67])), null); // Ogg
  });

  it('needs no more than SNIFF_BYTES bytes for any format', () => {
    const cases = [head('RIFF', u32le(36), 'WAVE'), head(u32le(0x20), 'ftypisom'), head('fLaC')];
    for (const c of cases) assert.notEqual(sniffFormat(c.subarray(0, SNIFF_BYTES)), null);
  });
});
