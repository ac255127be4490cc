/**
 * Per-key admission control for outgoing deliveries: a token bucket (sustained rate plus burst)
 * and a cap on in-flight work, per key (typically an endpoint or a destination host).
 * Callers over the limit wait in a bounded FIFO queue instead of being dropped; only when that
 * queue is full does `acquire` fail, with `RateLimitQueueFullError`, so back-pressure is explicit.
 * Pure apart from the injected clock, so tests drive time by hand.
 */

export interface Clock {
  nowMs(): number;
  /** Runs `callback` after `delayMs`; returns a function that cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
}

export const systemClock: Clock = {
  nowMs: () => performance.now(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, delayMs);
    return () => clearTimeout(handle);
  },
};

export interface RateLimitOptions {
  /** Sustained tokens per second, per key. */
  ratePerSecond: number;
  /** Bucket size: how many may start back to back after a quiet period. */
  burst: number;
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

interface KeyState {
  tokens: number;
  refilledAtMs: number;
  inFlight: number;
  waiters: Array<(release: Release) => void>;
  cancelTimer: (() => void) | undefined;
}

/** Idle keys are forgotten lazily; a sweep runs only once this many keys are known. */
const keysSweepThreshold = 1024;

export class KeyedRateLimiter {
  private readonly keys = new Map<string, KeyState>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock = systemClock,
  ) {
    const { ratePerSecond, burst, concurrencyMax, queueMax } = options;
    if (!(ratePerSecond > 0) || !(burst >= 1) || !(concurrencyMax >= 1) || !(queueMax >= 0)) {
      throw new RangeError(`invalid rate limit options: ${JSON.stringify(options)}`);
    }
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
        tokens: this.options.burst,
        refilledAtMs: this.clock.nowMs(),
        inFlight: 0,
        waiters: [],
        cancelTimer: undefined,
      };
      this.keys.set(key, state);
    }
    return state;
  }

  private refill(state: KeyState): void {
    const nowMs = this.clock.nowMs();
    const earned = ((nowMs - state.refilledAtMs) / 1000) * this.options.ratePerSecond;
    state.tokens = Math.min(this.options.burst, state.tokens + earned);
    state.refilledAtMs = nowMs;
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
      state.tokens -= 1;
      state.inFlight += 1;
      const grant = state.waiters.shift() as (release: Release) => void;
      grant(this.releaseFor(key, state));
    }
    // Only a missing token is worth a timer; a missing concurrency slot is signalled by a release.
    if (state.waiters.length > 0 && state.inFlight < this.options.concurrencyMax) {
      const waitMs = ((1 - state.tokens) / this.options.ratePerSecond) * 1000;
      state.cancelTimer = this.clock.setTimer(Math.ceil(waitMs), () => {
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
