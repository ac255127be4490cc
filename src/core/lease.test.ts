import { expect, test } from "bun:test";
import { leaseAllowsStart, leaseTimingProblem, renewEveryMs } from "./lease.ts";

const timing = { leaseMs: 30_000, deliveryTimeoutMs: 10_000 };

test("a delivery starts only while its timeout and a quarter of the lease fit in what is left", () => {
  const heldUntilMs = 100_000;
  // 10,000 + 7,500 must fit: the latest start is 82,500.
  expect(leaseAllowsStart(timing, heldUntilMs, 82_500)).toBe(true);
  expect(leaseAllowsStart(timing, heldUntilMs, 82_501)).toBe(false);
  expect(leaseAllowsStart(timing, -Infinity, 0)).toBe(false);
});

test("at twice the timeout, a start fits right before every renewal, with room for a late one", () => {
  for (const deliveryTimeoutMs of [100, 2500, 60_000]) {
    const edge = { leaseMs: 2 * deliveryTimeoutMs, deliveryTimeoutMs };
    expect(leaseTimingProblem(edge)).toBeUndefined();
    const renewedAtMs = 1000;
    const late = edge.leaseMs / 12;
    const beforeNextMs = renewedAtMs + renewEveryMs(edge) + late;
    expect(leaseAllowsStart(edge, renewedAtMs + edge.leaseMs, beforeNextMs)).toBe(true);
  }
});

test("a lease shorter than twice the timeout is refused, naming both", () => {
  expect(leaseTimingProblem({ leaseMs: 5000, deliveryTimeoutMs: 3000 })).toBe(
    "must be at least twice the longest delivery timeout (3000 ms), got 5000",
  );
});
