/**
 * Per-key token buckets (sustained rate plus burst), in two flavours sharing one refill:
 * - `KeyedRateLimiter`, for outgoing deliveries: also caps in-flight work per key (an endpoint or a
 *   destination host). Callers over the limit wait in a bounded FIFO queue instead of being dropped;
 *   only when that queue is full does `acquire` fail, with `RateLimitQueueFullError`, so
 *   back-pressure is explicit.
 * - `RequestRateLimiter`, for incoming requests: never waits; `tryTake` admits or says how long
 *   until it would, for a 429 with Retry-After.
 * Pure apart from the injected clock, so tests drive time by hand.
 */

export interface Clock {
  nowMs(): number;
  /** Runs `callback` after `delayMs`; returns a function that cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
}

const systemClock: Clock = {
  nowMs: () => performance.now(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, delayMs);
    return () => clearTimeout(handle);
  },
};

export interface TokenRate {
  /** Sustained tokens per second, per key. */
  ratePerSecond: number;
  /** Bucket size: how many may start back to back after a quiet period. */
  burst: number;
}

export interface RateLimitOptions extends TokenRate {
  /** In-flight holders per key at most. */
  concurrencyMax: number;
  /** Waiters per key at most; one more is refused rather than queued. */
  queueMax: number;
}

export class RateLimitQueueFullError extends Error {
  override readonly name = "RateLimitQueueFullError";
  constructor(
    readonly key: string,
    readonly queueMax: number,
  ) {
    super(`rate limit queue for ${key} is full (${queueMax} waiting)`);
  }
}

/** Gives the slot back; call exactly once. */
export type Release = () => void;

interface Bucket {
  tokens: number;
  refilledAtMs: number;
}

/** A new key starts with a full bucket. */
const fullBucket = (rate: TokenRate, nowMs: number): Bucket => ({ tokens: rate.burst, refilledAtMs: nowMs });

function refill(bucket: Bucket, rate: TokenRate, nowMs: number): void {
  const earned = ((nowMs - bucket.refilledAtMs) / 1000) * rate.ratePerSecond;
  bucket.tokens = Math.min(rate.burst, bucket.tokens + earned);
  bucket.refilledAtMs = nowMs;
}

/** How long a just-refilled bucket short of a whole token waits for one. */
const msUntilToken = (bucket: Bucket, rate: TokenRate): number =>
  ((1 - bucket.tokens) / rate.ratePerSecond) * 1000;

function checkRate(options: TokenRate, othersValid: boolean): void {
  if (!(options.ratePerSecond > 0) || !(options.burst >= 1) || !othersValid) {
    throw new RangeError(`invalid rate limit options: ${JSON.stringify(options)}`);
  }
}

interface KeyState extends Bucket {
  inFlight: number;
  waiters: Array<(release: Release) => void>;
  cancelTimer: (() => void) | undefined;
}

/** One start: a token spent, a concurrency slot held until its release. */
function takeSlot(state: KeyState): void {
  state.tokens -= 1;
  state.inFlight += 1;
}

/** Idle keys are forgotten lazily; a sweep runs only once this many keys are known. */
const keysSweepThreshold = 1024;

export class KeyedRateLimiter {
  private readonly keys = new Map<string, KeyState>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock = systemClock,
  ) {
    checkRate(options, options.concurrencyMax >= 1 && options.queueMax >= 0);
  }

  /** Waits for a token and a concurrency slot for `key`, in arrival order. */
  acquire(key: string): Promise<Release> {
    const state = this.stateOf(key);
    if (state.waiters.length >= this.options.queueMax && !this.canStart(state)) {
      return Promise.reject(new RateLimitQueueFullError(key, this.options.queueMax));
    }
    const granted = new Promise<Release>((resolve) => state.waiters.push(resolve));
    this.pump(key, state);
    return granted;
  }

  /** `fn` under the limit for `key`; the slot is released however `fn` ends. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const state = this.stateOf(key);
    // Fast path: nobody waits and a token and a slot are free, so `acquire` would grant at once.
    if (this.canStart(state)) {
      takeSlot(state);
      try {
        return await fn();
      } finally {
        state.inFlight -= 1;
        // With nobody waiting, the pump would only refill; the next taker refills anyway.
        if (state.waiters.length > 0) this.pump(key, state);
      }
    }
    const release = await this.acquire(key);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private stateOf(key: string): KeyState {
    let state = this.keys.get(key);
    if (state === undefined) {
      if (this.keys.size >= keysSweepThreshold) this.sweepIdle();
      state = {
        ...fullBucket(this.options, this.clock.nowMs()),
        inFlight: 0,
        waiters: [],
        cancelTimer: undefined,
      };
      this.keys.set(key, state);
    }
    return state;
  }

  private refill(state: KeyState): void {
    refill(state, this.options, this.clock.nowMs());
  }

  private canStart(state: KeyState): boolean {
    this.refill(state);
    return state.waiters.length === 0 && state.inFlight < this.options.concurrencyMax && state.tokens >= 1;
  }

  /** Hands out slots to waiters while both limits allow, then arms a timer for the next token. */
  private pump(key: string, state: KeyState): void {
    state.cancelTimer?.();
    state.cancelTimer = undefined;
    this.refill(state);
    while (state.waiters.length > 0 && state.inFlight < this.options.concurrencyMax && state.tokens >= 1) {
      takeSlot(state);
      const grant = state.waiters.shift() as (release: Release) => void;
      grant(this.releaseFor(key, state));
    }
    // Only a missing token is worth a timer; a missing concurrency slot is signalled by a release.
    if (state.waiters.length > 0 && state.inFlight < this.options.concurrencyMax) {
      state.cancelTimer = this.clock.setTimer(Math.ceil(msUntilToken(state, this.options)), () => {
        state.cancelTimer = undefined;
        this.pump(key, state);
      });
    }
  }

  private releaseFor(key: string, state: KeyState): Release {
    let released = false;
    return () => {
      if (released) throw new Error(`rate limit slot for ${key} released twice`);
      released = true;
      state.inFlight -= 1;
      this.pump(key, state);
    };
  }

  private sweepIdle(): void {
    for (const [key, state] of this.keys) {
      this.refill(state);
      if (state.inFlight === 0 && state.waiters.length === 0 && state.tokens >= this.options.burst) {
        this.keys.delete(key);
      }
    }
  }
}

export type Admission = { allowed: true } | { allowed: false; retryAfterMs: number };

export interface RequestRateOptions extends TokenRate {
  /**
   * Keys tracked at most. Beyond it the least recently seen key is forgotten, which only hands that
   * caller a full bucket again: under a flood of distinct keys memory stays bounded.
   */
  keysMax?: number;
}

/** About 10 MB of buckets. */
const keysMaxDefault = 100_000;

/**
 * A token bucket per caller that admits or refuses at once. A refused request takes no token, so
 * Retry-After is exact for a caller who waits it out.
 */
export class RequestRateLimiter {
  /** In order of last use, so both idle keys and the eviction victim are at the front. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly keysMax: number;
  /** Idle this long, a bucket is full again: forgetting it changes nothing. */
  private readonly refillMs: number;

  constructor(
    private readonly rate: RequestRateOptions,
    private readonly clock: Pick<Clock, "nowMs"> = systemClock,
  ) {
    this.keysMax = rate.keysMax ?? keysMaxDefault;
    checkRate(rate, this.keysMax >= 1);
    this.refillMs = (rate.burst / rate.ratePerSecond) * 1000;
  }

  tryTake(key: string): Admission {
    const nowMs = this.clock.nowMs();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.forgetIdle(nowMs);
      if (this.buckets.size >= this.keysMax) this.buckets.delete(this.buckets.keys().next().value as string);
      bucket = fullBucket(this.rate, nowMs);
    } else {
      this.buckets.delete(key);
      refill(bucket, this.rate, nowMs);
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return { allowed: false, retryAfterMs: msUntilToken(bucket, this.rate) };
    bucket.tokens -= 1;
    return { allowed: true };
  }

  /** Keys tracked now (for tests of the memory bound). */
  get size(): number {
    return this.buckets.size;
  }

  /** Stops at the first recently used key: everything after it was used later still. */
  private forgetIdle(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (nowMs - bucket.refilledAtMs < this.refillMs) return;
      this.buckets.delete(key);
    }
  }
}

/** HTTP's Retry-After is whole seconds; rounding up (and at least 1) never invites an early retry. */
export const retryAfterSeconds = (retryAfterMs: number): number =>
  Math.max(1, Math.ceil(retryAfterMs / 1000));
