// Per-address rate limits on the expensive endpoints: a token bucket per client address, refilled
// continuously, so a burst up to the minute's allowance passes and a steady flood is cut to the rate.
import type { MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { clientAddress } from '../base/address.js';
import { AppError } from '../base/errors.js';

/** Buckets kept at most; past it the full ones (idle clients) are dropped first. */
const MAX_BUCKETS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one request's token for `address`; the seconds until one is free when there is none. */
  take(address: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const t = this.now();
    const rate = this.perMinute / 60_000;
    const b = this.buckets.get(address) ?? { tokens: this.perMinute, at: t };
    b.tokens = Math.min(this.perMinute, b.tokens + (t - b.at) * rate);
    b.at = t;
    this.buckets.delete(address); // re-inserted last: the map's order is then least recently seen first
    this.buckets.set(address, b);
    if (this.buckets.size > MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.ceil((1 - b.tokens) / rate / 1000) };
  }
}

/** A middleware allowing `perMinute` requests per client address; 0 lets everything through. */
export function rateLimit(perMinute: number, what: string, trustProxy: boolean): MiddlewareHandler {
  if (perMinute <= 0) return (_c, next) => next();
  const limiter = new RateLimiter(perMinute);
  return async (c, next) => {
    const address = clientAddress(c.req.header('x-forwarded-for'), getConnInfo(c).remote.address, trustProxy);
    const r = limiter.take(address);
    if (!r.ok) {
      c.header('Retry-After', String(r.retryAfterSeconds));
      throw new AppError('TOO_FAST', `more than ${perMinute} ${what} requests a minute from ${address}; retry in ${r.retryAfterSeconds} s`);
    }
    await next();
  };
}
