/**
 * Token buckets that bound work done for unauthenticated input: chain verifications of certificates a
 * member has not verified before (MessageOpener), and signed answers to joiners whose certificate was
 * refused (the member driver's JOIN REPLY NAK).
 *
 * Pure: time comes in as `nowMs` (any clock that does not run backwards by much; a step back only delays
 * refill). Not thread-safe.
 */
import { SecurityConfigError } from './errors.js';

export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Largest number of tokens held (a burst this large passes at once). */
  readonly burst: number;
}

/** One bucket: starts full. */
export class TokenBucket {
  private tokens: number;
  private at: number | null = null;

  constructor(readonly opts: TokenBucketOptions) {
    if (!(opts.perSecond > 0) || !(opts.burst >= 1)) throw new SecurityConfigError('bad-option', `token bucket needs perSecond > 0 and burst >= 1, got ${opts.perSecond}/s burst ${opts.burst}`);
    this.tokens = opts.burst;
  }

  /** Takes one token at `nowMs`; false when none is left (the caller drops the work and counts it). */
  take(nowMs: number): boolean {
    if (this.at !== null && nowMs > this.at) this.tokens = Math.min(this.opts.burst, this.tokens + ((nowMs - this.at) * this.opts.perSecond) / 1000);
    if (this.at === null || nowMs > this.at) this.at = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface KeyedRateLimitOptions extends TokenBucketOptions {
  /** Keys (source addresses) whose bucket is kept; least recently used evicted. Default 4096. */
  readonly maxKeys?: number;
  /** A bucket shared by all keys on top of each key's own; none when omitted. */
  readonly overall?: TokenBucketOptions;
}

/**
 * One bucket per key (a source address) and optionally one overall: a single source cannot use more
 * than its share, and many spoofed sources together no more than `overall`. An evicted key comes back
 * with a full bucket, so maxKeys must exceed the number of sources expected at one time.
 */
export class KeyedRateLimit {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly overall: TokenBucket | null;
  private readonly maxKeys: number;
  /** Takes refused so far (any key). */
  refused = 0;

  constructor(readonly opts: KeyedRateLimitOptions) {
    this.maxKeys = opts.maxKeys ?? 4096;
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1) throw new SecurityConfigError('bad-option', `maxKeys ${this.maxKeys} must be a positive integer`);
    this.overall = opts.overall ? new TokenBucket(opts.overall) : null;
    new TokenBucket(opts); // validates
  }

  /** Takes one token for `key` at `nowMs` (and one overall); false when either is empty. */
  take(key: string, nowMs: number): boolean {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
    } else {
      bucket = new TokenBucket(this.opts);
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, bucket);
    const ok = bucket.take(nowMs) && (this.overall === null || this.overall.take(nowMs));
    if (!ok) this.refused++;
    return ok;
  }
}
