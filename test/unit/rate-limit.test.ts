// The token bucket alone, on a clock the test moves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../src/http/rate-limit.js';

test('a burst up to the allowance passes, then the rate holds, per address', () => {
  let now = 0;
  const r = new RateLimiter(60, () => now); // one a second
  for (let i = 0; i < 60; i++) assert.equal(r.take('a').ok, true, `burst ${i}`);
  const refused = r.take('a');
  assert.deepEqual(refused, { ok: false, retryAfterSeconds: 1 });
  assert.equal(r.take('b').ok, true, 'another address has its own bucket');
  now += 500;
  assert.equal(r.take('a').ok, false, 'half a token is not a request');
  now += 500;
  assert.equal(r.take('a').ok, true);
  now += 3_600_000;
  for (let i = 0; i < 60; i++) assert.equal(r.take('a').ok, true, 'refilled to the allowance, no more');
  assert.equal(r.take('a').ok, false);
});
