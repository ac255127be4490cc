import { describe, expect, test } from "bun:test";
import {
  type Clock,
  KeyedRateLimiter,
  RateLimitQueueFullError,
  type Release,
  RequestRateLimiter,
  retryAfterSeconds,
} from "./rate-limit.ts";

/** Time moves only when the test says so; due timers run in order of their due time. */
class FakeClock implements Clock {
  private timeMs = 0;
  private timers: Array<{ dueMs: number; callback: () => void }> = [];

  nowMs(): number {
    return this.timeMs;
  }

  setTimer(delayMs: number, callback: () => void): () => void {
    const timer = { dueMs: this.timeMs + delayMs, callback };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Advances time, firing due timers, then lets promise continuations run. */
  async advance(ms: number): Promise<void> {
    const endMs = this.timeMs + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.dueMs <= endMs).sort((a, b) => a.dueMs - b.dueMs)[0];
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.timeMs = next.dueMs;
      next.callback();
      await flush();
    }
    this.timeMs = endMs;
    await flush();
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Starts `count` acquires and records, per index, the fake time at which each was granted. */
function acquireMany(limiter: KeyedRateLimiter, clock: FakeClock, key: string, count: number) {
  const grantedAtMs: Array<number | undefined> = new Array(count).fill(undefined);
  const releases: Release[] = [];
  for (let i = 0; i < count; i++) {
    void limiter.acquire(key).then((release) => {
      grantedAtMs[i] = clock.nowMs();
      releases.push(release);
    });
  }
  return { grantedAtMs, releases };
}

describe("KeyedRateLimiter", () => {
  test("burst passes at once, the rest are queued and paced at the rate, in order", async () => {
    const clock = new FakeClock();
    const limiter = new KeyedRateLimiter(
      { ratePerSecond: 10, burst: 3, concurrencyMax: 100, queueMax: 10 },
      clock,
    );
    const { grantedAtMs } = acquireMany(limiter, clock, "a", 6);
    await flush();
    expect(grantedAtMs).toEqual([0, 0, 0, undefined, undefined, undefined]);
    await clock.advance(1000);
    expect(grantedAtMs).toEqual([0, 0, 0, 100, 200, 300]);
  });

  test("concurrency limit: a waiter starts only when a holder releases", async () => {
    const clock = new FakeClock();
    const limiter = new KeyedRateLimiter(
      { ratePerSecond: 1000, burst: 10, concurrencyMax: 2, queueMax: 10 },
      clock,
    );
    const { grantedAtMs, releases } = acquireMany(limiter, clock, "a", 4);
    await flush();
    await clock.advance(1000);
    expect(grantedAtMs).toEqual([0, 0, undefined, undefined]);
    releases[0]?.();
    await flush();
    expect(grantedAtMs).toEqual([0, 0, 1000, undefined]);
    expect(() => releases[0]?.()).toThrow("released twice");
  });

  test("keys are independent", async () => {
    const clock = new FakeClock();
    const limiter = new KeyedRateLimiter(
      { ratePerSecond: 1, burst: 1, concurrencyMax: 1, queueMax: 5 },
      clock,
    );
    const a = acquireMany(limiter, clock, "a", 2);
    const b = acquireMany(limiter, clock, "b", 1);
    await flush();
    expect(a.grantedAtMs).toEqual([0, undefined]);
    expect(b.grantedAtMs).toEqual([0]);
  });

  test("a full queue refuses with a typed error; queued waiters are still served", async () => {
    const clock = new FakeClock();
    const limiter = new KeyedRateLimiter(
      { ratePerSecond: 2, burst: 1, concurrencyMax: 5, queueMax: 2 },
      clock,
    );
    const { grantedAtMs } = acquireMany(limiter, clock, "a", 3); // 1 granted, 2 queued
    const refused = limiter.acquire("a");
    await expect(refused).rejects.toBeInstanceOf(RateLimitQueueFullError);
    await expect(refused).rejects.toMatchObject({ key: "a", queueMax: 2 });
    await clock.advance(1000);
    expect(grantedAtMs).toEqual([0, 500, 1000]);
  });

  test("run releases the slot when the work throws", async () => {
    const clock = new FakeClock();
    const limiter = new KeyedRateLimiter(
      { ratePerSecond: 100, burst: 5, concurrencyMax: 1, queueMax: 1 },
      clock,
    );
    await expect(limiter.run("a", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limiter.run("a", async () => "ok")).toBe("ok");
  });

  test("invalid options are programmer errors", () => {
    expect(
      () => new KeyedRateLimiter({ ratePerSecond: 0, burst: 1, concurrencyMax: 1, queueMax: 1 }),
    ).toThrow(RangeError);
  });
});

describe("RequestRateLimiter", () => {
  /** Admissions of `count` back-to-back requests, as true/false. */
  const takeMany = (limiter: RequestRateLimiter, key: string, count: number): boolean[] =>
    Array.from({ length: count }, () => limiter.tryTake(key).allowed);

  test("the burst is admitted at once, the rest refused with the wait for the next token", async () => {
    const clock = new FakeClock();
    const limiter = new RequestRateLimiter({ ratePerSecond: 4, burst: 3 }, clock);
    expect(takeMany(limiter, "a", 3)).toEqual([true, true, true]);
    expect(limiter.tryTake("a")).toEqual({ allowed: false, retryAfterMs: 250 });
    await clock.advance(100);
    expect(limiter.tryTake("a")).toEqual({ allowed: false, retryAfterMs: 150 });
  });

  test("a refusal takes no token: waiting out retryAfterMs admits exactly one more", async () => {
    const clock = new FakeClock();
    const limiter = new RequestRateLimiter({ ratePerSecond: 2, burst: 2 }, clock);
    takeMany(limiter, "a", 2);
    const refused = limiter.tryTake("a");
    if (refused.allowed) throw new Error("expected a refusal");
    takeMany(limiter, "a", 10);
    await clock.advance(refused.retryAfterMs);
    expect(takeMany(limiter, "a", 2)).toEqual([true, false]);
  });

  test("the sustained rate is ratePerSecond and a quiet period refills at most the burst", async () => {
    const clock = new FakeClock();
    const limiter = new RequestRateLimiter({ ratePerSecond: 10, burst: 5 }, clock);
    let admitted = 0;
    for (let i = 0; i < 100; i++) {
      admitted += takeMany(limiter, "a", 3).filter(Boolean).length;
      await clock.advance(100);
    }
    expect(admitted).toBe(5 + 99); // the burst, then one per 100 ms
    await clock.advance(60_000);
    expect(takeMany(limiter, "a", 7).filter(Boolean).length).toBe(5);
  });

  test("keys are independent", () => {
    const limiter = new RequestRateLimiter({ ratePerSecond: 1, burst: 2 }, new FakeClock());
    expect(takeMany(limiter, "a", 3)).toEqual([true, true, false]);
    expect(takeMany(limiter, "b", 3)).toEqual([true, true, false]);
  });

  test("idle keys are forgotten once their bucket would be full again", async () => {
    const clock = new FakeClock();
    const limiter = new RequestRateLimiter({ ratePerSecond: 10, burst: 10 }, clock);
    for (let i = 0; i < 50; i++) limiter.tryTake(`idle-${i}`);
    await clock.advance(500);
    limiter.tryTake("recent");
    await clock.advance(500); // the idle keys have refilled, "recent" has not
    limiter.tryTake("new");
    expect(limiter.size).toBe(2);
  });

  test("past keysMax the least recently seen key is forgotten, so memory stays bounded", () => {
    const limiter = new RequestRateLimiter({ ratePerSecond: 1, burst: 1, keysMax: 2 }, new FakeClock());
    takeMany(limiter, "a", 1);
    takeMany(limiter, "b", 1);
    expect(limiter.tryTake("a").allowed).toBe(false); // "a" is now the most recently seen
    takeMany(limiter, "c", 1); // evicts "b"
    expect(limiter.size).toBe(2);
    expect(limiter.tryTake("a").allowed).toBe(false);
    expect(limiter.tryTake("b").allowed).toBe(true); // forgotten, so a full bucket again
  });

  test("invalid options are programmer errors", () => {
    expect(() => new RequestRateLimiter({ ratePerSecond: 1, burst: 0 })).toThrow(RangeError);
    expect(() => new RequestRateLimiter({ ratePerSecond: 1, burst: 1, keysMax: 0 })).toThrow(RangeError);
  });
});

test("retryAfterSeconds rounds up to whole seconds, at least 1", () => {
  expect([0.001, 999, 1000, 1001, 2500].map(retryAfterSeconds)).toEqual([1, 1, 1, 2, 3]);
});
