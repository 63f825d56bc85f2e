// The vote table on synthetic postings: no index, no audio.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FRAME_SECONDS } from '../../src/exact/fingerprint.js';
import type { QueryPostings } from '../../src/exact/fingerprint-index.js';
import { DEFAULT_MATCHER, VoteTable, type MatcherConfig } from '../../src/exact/matcher.js';

/** One posting: [track, offset, query frame, hash]. */
type P = [number, number, number, number];

function postings(ps: P[]): QueryPostings {
  return {
    length: ps.length,
    track: Uint32Array.from(ps, (p) => p[0]),
    offset: Int32Array.from(ps, (p) => p[1]),
    queryTime: Uint32Array.from(ps, (p) => p[2]),
    hash: Uint32Array.from(ps, (p) => p[3]),
    queryCents: new Uint32Array(ps.length),
  };
}

/** n postings of one track at one offset, one distinct hash per query frame from `frame0`. */
const aligned = (track: number, offset: number, n: number, frame0 = 0, hash0 = 1000 * track): P[] =>
  Array.from({ length: n }, (_, i): P => [track, offset, frame0 + i, hash0 + i]);

/** Thresholds isolated: only minAligned decides. */
const LOOSE: MatcherConfig = { ...DEFAULT_MATCHER, minAnchors: 1 };

describe('VoteTable', () => {
  it('picks the track whose votes agree on one offset over scattered ones', () => {
    const t = new VoteTable();
    // Track 3 gets more postings than track 7, but each at a different offset.
    const scattered = Array.from({ length: 40 }, (_, i): P => [3, i * 10, i, 5000 + i]);
    t.add(postings([...scattered, ...aligned(7, 100, 10, 4)]));
    const [best, ...rest] = t.best(5);
    assert.equal(rest.length, 0);
    assert.equal(best!.fpId, 7);
    assert.equal(best!.offsetFrames, 100);
    assert.equal(best!.offsetSeconds, 100 * FRAME_SECONDS);
    assert.equal(best!.alignedHashes, 10);
    assert.equal(best!.startFrame, 4);
    assert.deepEqual(best!.elsewhere, []);
  });

  it('counts offsets within the tolerance as one alignment, placed on the line through them', () => {
    const t = new VoteTable();
    t.add(postings(Array.from({ length: 10 }, (_, i): P => [1, 100 + ((i % 3) - 1), i, 10 + i])));
    const [c] = t.best(1);
    assert.equal(c!.alignedHashes, 10);
    assert.ok(Math.abs(c!.offsetFrames - 100) < 0.5, `offset ${c!.offsetFrames}`);
    assert.ok(Math.abs(c!.timeScale - 1) < 0.02, `time scale ${c!.timeScale}`);
  });

  for (const scale of [0.95, 0.97, 1.03, 1.05]) {
    it(`finds a recording played at ${scale} times the speed and its time scale`, () => {
      // Track frame = 300 + scale * query frame, over a 5 s query (156 frames), plus chance votes.
      const t = new VoteTable();
      const line = Array.from({ length: 40 }, (_, i): P => {
        const q = i * 4;
        return [2, Math.round(300 + scale * q) - q, q, 100 + i];
      });
      const noise = Array.from({ length: 200 }, (_, i): P => [2 + (i % 5), (i * 7919) % 900, (i * 31) % 156, 9000 + i]);
      t.add(postings([...noise, ...line]));
      const [c] = t.best(1);
      assert.equal(c!.fpId, 2);
      assert.ok(c!.alignedHashes >= 38, `${c!.alignedHashes} aligned`);
      assert.ok(Math.abs(c!.timeScale - scale) < 0.004, `time scale ${c!.timeScale}`);
      assert.ok(Math.abs(c!.offsetFrames - 300) < 1.5, `offset ${c!.offsetFrames}`);
    });
  }

  it('does not fit a line steeper than the time scale allows', () => {
    // 1.2 times the speed: votes spread far wider than 7% can explain, so no window aligns 5.
    const t = new VoteTable(LOOSE);
    t.add(postings(Array.from({ length: 20 }, (_, i): P => [1, Math.round(0.2 * i * 8), i * 8, 100 + i])));
    assert.ok((t.best(1)[0]?.alignedHashes ?? 0) < 8);
  });

  it('does not join offsets further apart than the tolerance', () => {
    const t = new VoteTable(LOOSE);
    // 4 + 4 votes three frames apart: neither window of 3 offsets holds 5.
    t.add(postings([...aligned(1, 100, 4, 0, 10), ...aligned(1, 103, 4, 4, 20)]));
    assert.deepEqual(t.best(5), []);
  });

  it('needs minAligned distinct hashes: exactly enough passes, one fewer does not', () => {
    const five = new VoteTable(LOOSE);
    five.add(postings(aligned(1, 50, 5)));
    assert.equal(five.best(5).length, 1);
    const four = new VoteTable(LOOSE);
    four.add(postings(aligned(1, 50, 4)));
    assert.deepEqual(four.best(5), []);
    // The argument overrides the configured threshold.
    assert.equal(four.best(5, 4)[0]!.alignedHashes, 4);
    assert.deepEqual(five.best(5, 6), []);
  });

  it('does not count one hash repeated on every beat as many aligned hashes', () => {
    const t = new VoteTable(LOOSE);
    t.add(postings(Array.from({ length: 20 }, (_, i): P => [1, 50, i, 42])));
    assert.deepEqual(t.best(5), []);
    assert.equal(t.best(5, 1)[0]!.alignedHashes, 1);
  });

  it('needs minAnchors distinct query frames: a burst at one instant is no match', () => {
    const burst = postings(Array.from({ length: 10 }, (_, i): P => [1, 50, 7, 100 + i]));
    const t = new VoteTable();
    t.add(burst);
    assert.deepEqual(t.best(5), []);
    // The same votes pass once a single anchor is allowed: the anchors were what failed.
    const loose = new VoteTable(LOOSE);
    loose.add(burst);
    assert.equal(loose.best(5)[0]!.alignedHashes, 10);
  });

  it('orders tracks by aligned hashes and keeps at most max', () => {
    const t = new VoteTable();
    t.add(postings([...aligned(1, 10, 8), ...aligned(2, 20, 12), ...aligned(3, 30, 6)]));
    assert.deepEqual(
      t.best(5).map((c) => [c.fpId, c.alignedHashes]),
      [
        [2, 12],
        [1, 8],
        [3, 6],
      ],
    );
    assert.deepEqual(
      t.best(1).map((c) => c.fpId),
      [2],
    );
  });

  it('returns both tracks of a tie, each with its own count', () => {
    const t = new VoteTable();
    t.add(postings([...aligned(1, 10, 7), ...aligned(2, 20, 7)]));
    const got = t.best(5);
    assert.deepEqual(got.map((c) => c.fpId).sort(), [1, 2]);
    assert.ok(got.every((c) => c.alignedHashes === 7));
  });

  it("lists a track's weaker alignments in elsewhere, and splits a tie within a track", () => {
    const t = new VoteTable();
    t.add(postings([...aligned(1, 100, 12, 0, 0), ...aligned(1, 500, 6, 0, 100)]));
    const [c] = t.best(5);
    assert.equal(c!.offsetFrames, 100);
    assert.deepEqual(
      c!.elsewhere.map((e) => [e.offsetFrames, e.alignedHashes]),
      [[500, 6]],
    );

    const tie = new VoteTable();
    tie.add(postings([...aligned(1, 100, 6, 0, 0), ...aligned(1, 500, 6, 0, 100)]));
    const [d] = tie.best(5);
    assert.equal(d!.elsewhere.length, 1);
    assert.deepEqual(
      [d!.offsetFrames, d!.elsewhere[0]!.offsetFrames].sort((a, b) => a - b),
      [100, 500],
    );
  });

  it('accumulates votes over several lookups like one', () => {
    const all = aligned(1, 100, 12);
    const t = new VoteTable();
    for (let i = 0; i < all.length; i += 3) t.add(postings(all.slice(i, i + 3)));
    const once = new VoteTable();
    once.add(postings(all));
    assert.deepEqual(t.best(5), once.best(5));
    assert.equal(t.best(5)[0]!.alignedHashes, 12);
  });

  it('dropBefore forgets the votes of query frames before the window', () => {
    const t = new VoteTable();
    t.add(postings(aligned(1, 100, 10, 0))); // frames 0..9
    t.add(postings(aligned(2, 300, 10, 10))); // frames 10..19
    assert.equal(t.best(5).length, 2);
    t.dropBefore(5);
    const [c1] = t.best(5).filter((c) => c.fpId === 1);
    assert.equal(c1!.alignedHashes, 5);
    assert.equal(c1!.startFrame, 5);
    t.dropBefore(10);
    assert.deepEqual(
      t.best(5).map((c) => c.fpId),
      [2],
    );
    t.dropBefore(100);
    assert.deepEqual(t.best(5), []);
  });

  it('dropBefore takes dropped votes out of the shortlist too', () => {
    // Twelve tracks that matched long ago, more strongly, must not crowd out the recent one.
    const t = new VoteTable();
    for (let track = 1; track <= 12; track++) t.add(postings(aligned(track, 100, 20, 0)));
    t.add(postings(aligned(50, 700, 6, 20)));
    t.dropBefore(20);
    assert.deepEqual(
      t.best(1).map((c) => [c.fpId, c.alignedHashes]),
      [[50, 6]],
    );
  });

  it('keeps its counts through table growth and compaction of a long stream', () => {
    // 6000 lookups of one noise posting each at a fresh offset (forcing rehashes), and a true
    // alignment in the last 1000 frames; dropping 5000 frames compacts the posting arrays.
    const t = new VoteTable();
    for (let f = 0; f < 6000; f++) {
      const ps: P[] = [[9, f * 7, f, f]];
      if (f >= 5000 && f % 100 === 0) ps.push([4, 1234, f, 900_000 + f]);
      t.add(postings(ps));
    }
    t.dropBefore(5000);
    const [c, ...rest] = t.best(5);
    assert.equal(rest.length, 0);
    assert.deepEqual([c!.fpId, c!.offsetFrames, c!.alignedHashes, c!.startFrame], [4, 1234, 10, 5000]);
    t.add(postings(aligned(4, 1234, 3, 6000, 1)));
    assert.equal(t.best(5)[0]!.alignedHashes, 13);
  });
});
