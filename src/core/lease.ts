/**
 * When work under a renewed lease may start (a claimed notification's or group send's,
 * src/stages/sender/lease-keeper.ts). A lease taken at local time t (just before the statement that
 * set it) holds at least until t + leaseMs: the database's now() of that statement is later. The
 * holder renews it every sixth of the lease, and starts a delivery only while the delivery's timeout
 * and a quarter of the lease still fit in what is left, so every delivery ends, and its outcome can
 * be recorded, before another sender may claim the row; a lease that could not be renewed lets none start. With leaseMs at
 * least twice the timeout, a start is always possible between two renewals: right before one, 5/6
 * of the lease is left, and timeout + 1/4 of it is at most 3/4 (the rest, 1/12, for a renewal that
 * is late or slow).
 */

export interface LeaseTiming {
  leaseMs: number;
  /** The longest a started delivery can take: every channel's own timeout bounds it. */
  deliveryTimeoutMs: number;
}

export const renewEveryMs = (timing: LeaseTiming): number => timing.leaseMs / 6;

/** Whether a delivery may start at `nowMs` under a lease held until `heldUntilMs`. */
export function leaseAllowsStart(timing: LeaseTiming, heldUntilMs: number, nowMs: number): boolean {
  return nowMs + timing.deliveryTimeoutMs + timing.leaseMs / 4 <= heldUntilMs;
}

/** Why the timing can never let a delivery start, for a configuration error; undefined if it can. */
export function leaseTimingProblem(timing: LeaseTiming): string | undefined {
  if (timing.leaseMs >= 2 * timing.deliveryTimeoutMs) return undefined;
  return `must be at least twice the longest delivery timeout (${timing.deliveryTimeoutMs} ms), got ${timing.leaseMs}`;
}
