/**
 * The load generator's pacing, as pure arithmetic over an absolute schedule: alert number n (from 0)
 * is due at startMs + n * 1000 / ratePerS. Each tick sends everything due (the backlog after a slow
 * tick included) but at most `burstMax`, so a stall is caught up over a few ticks instead of being
 * lost, and the achieved rate stays the asked one whenever the broker keeps up.
 */

/** How often the generator wakes up when it is on schedule. */
export const tickMs = 5;

export interface Schedule {
  startMs: number;
  ratePerS: number;
  /** Alerts in the whole run; Infinity for --forever. */
  total: number;
  burstMax: number;
}

/** Default burst: ten ticks' worth of alerts, so a stall of up to ~50 ms is caught up within a tick. */
export function defaultBurstMax(ratePerS: number): number {
  return Math.max(1, Math.ceil((ratePerS * tickMs * 10) / 1000));
}

/** How many alerts are due by `nowMs` since the start (never more than the run's total). */
export function dueBy(schedule: Schedule, nowMs: number): number {
  const elapsedMs = Math.max(0, nowMs - schedule.startMs);
  // The epsilon keeps 1000 / 3 * 3 from rounding down to one alert short.
  return Math.min(schedule.total, Math.floor((elapsedMs * schedule.ratePerS) / 1000 + 1e-9));
}

/** Alerts to send in the tick at `nowMs`, given `sent` so far: the backlog, bounded by the burst. */
export function tickCount(schedule: Schedule, nowMs: number, sent: number): number {
  return Math.max(0, Math.min(dueBy(schedule, nowMs) - sent, schedule.burstMax));
}

/** Alerts due but not yet sent: how far behind the schedule the run is. */
export function backlog(schedule: Schedule, nowMs: number, sent: number): number {
  return Math.max(0, dueBy(schedule, nowMs) - sent);
}

/**
 * How long to sleep after a tick: no time while a backlog remains (catch up), otherwise until the
 * next alert is due but at least one tick, so sends are batched instead of one alert per wakeup.
 */
export function sleepMs(schedule: Schedule, nowMs: number, sent: number): number {
  if (backlog(schedule, nowMs, sent) > 0) return 0;
  const nextDueMs = schedule.startMs + ((sent + 1) * 1000) / schedule.ratePerS;
  return Math.max(tickMs, nextDueMs - nowMs);
}

/** Expected time to finish at the asked rate, from the current position; undefined when endless. */
export function remainingMs(schedule: Schedule, nowMs: number, sent: number): number | undefined {
  if (!Number.isFinite(schedule.total)) return undefined;
  const endMs = schedule.startMs + (schedule.total * 1000) / schedule.ratePerS;
  const backlogMs = (backlog(schedule, nowMs, sent) * 1000) / schedule.ratePerS;
  return Math.max(0, endMs - nowMs, backlogMs);
}
