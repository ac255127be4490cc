import { describe, expect, test } from "bun:test";
import {
  backlog,
  defaultBurstMax,
  dueBy,
  remainingMs,
  type Schedule,
  sleepMs,
  tickCount,
  tickMs,
} from "./schedule.ts";

const schedule = (overrides: Partial<Schedule> = {}): Schedule => ({
  startMs: 1000,
  ratePerS: 2000,
  total: 10_000,
  burstMax: 100,
  ...overrides,
});

describe("dueBy", () => {
  test("counts alerts due on the absolute schedule, capped at the total", () => {
    expect(dueBy(schedule(), 1000)).toBe(0);
    expect(dueBy(schedule(), 999)).toBe(0);
    expect(dueBy(schedule(), 1010)).toBe(20);
    expect(dueBy(schedule(), 1000 + 60_000)).toBe(10_000);
    expect(dueBy(schedule({ total: Number.POSITIVE_INFINITY }), 61_000)).toBe(120_000);
  });

  test("does not lose an alert to floating-point rounding", () => {
    expect(dueBy(schedule({ startMs: 0, ratePerS: 3 }), 1000)).toBe(3);
    expect(dueBy(schedule({ startMs: 0, ratePerS: 0.1 }), 10_000)).toBe(1);
  });
});

describe("catch-up", () => {
  test("after a stall the backlog is sent in bursts of at most burstMax", () => {
    const s = schedule();
    // 100 ms stalled: 200 alerts due, nothing sent.
    expect(backlog(s, 1100, 0)).toBe(200);
    expect(tickCount(s, 1100, 0)).toBe(100);
    expect(sleepMs(s, 1100, 100)).toBe(0);
    expect(tickCount(s, 1100, 100)).toBe(100);
    expect(backlog(s, 1100, 200)).toBe(0);
    expect(tickCount(s, 1100, 200)).toBe(0);
  });

  test("on schedule it sleeps at least one tick, or until the next alert is due", () => {
    expect(sleepMs(schedule(), 1100, 200)).toBe(tickMs);
    const slow = schedule({ ratePerS: 2 });
    expect(sleepMs(slow, 1000, 0)).toBe(500);
    expect(sleepMs(slow, 1200, 0)).toBe(300);
  });

  test("a simulated run with a jittery, sometimes stalling clock sends exactly the total on time", () => {
    const s = schedule({ startMs: 0, ratePerS: 20_000, total: 200_000, burstMax: defaultBurstMax(20_000) });
    let nowMs = 0;
    let sent = 0;
    let ticks = 0;
    let worstBacklog = 0;
    while (sent < s.total && ticks < 1_000_000) {
      sent += tickCount(s, nowMs, sent);
      worstBacklog = Math.max(worstBacklog, backlog(s, nowMs, sent));
      // Sleeps overshoot by up to 3 ms; every 500th tick the process stalls for 80 ms.
      nowMs += sleepMs(s, nowMs, sent) + ((ticks * 7919) % 4) + (ticks % 500 === 499 ? 80 : 0);
      ticks++;
    }
    expect(sent).toBe(200_000);
    // Finishing time: 10 s on schedule plus at most the last stall and a tick of slack.
    expect(nowMs).toBeGreaterThanOrEqual(10_000);
    expect(nowMs).toBeLessThan(10_000 + 80 + 2 * tickMs + 3);
    expect(worstBacklog).toBeGreaterThan(0);
  });

  test("the default burst is ten ticks' worth, at least one", () => {
    expect(defaultBurstMax(20_000)).toBe(1000);
    expect(defaultBurstMax(1)).toBe(1);
  });
});

describe("remainingMs", () => {
  test("time left at the asked rate, or the backlog's worth when behind", () => {
    expect(remainingMs(schedule(), 1000, 0)).toBe(5000);
    expect(remainingMs(schedule(), 4000, 6000)).toBe(2000);
    expect(remainingMs(schedule(), 7000, 6000)).toBe(2000);
    expect(remainingMs(schedule({ total: Number.POSITIVE_INFINITY }), 7000, 0)).toBeUndefined();
  });
});
