/**
 * A stage's background job: every `intervalMs`, steps of bounded work, one after the other while a
 * step says more is due, for at most half the interval and `stepsPerTickMax` steps, so that a tick
 * ends and leaves the stage's database connections to its main work half the time. Any number of
 * instances may run one when each step takes only rows no other holds (FOR UPDATE SKIP LOCKED). A step
 * that does not settle in time (a dead connection) is logged and the next tick runs on; a failing one
 * is logged and retried at the next tick.
 */
import { settleWithin } from "./deadline.ts";
import type { Logger } from "./log.ts";

export interface PeriodicJob {
  /** Stops ticking and waits for the tick in progress. */
  stop(): Promise<void>;
}

export interface PeriodicOptions {
  /** Named in logs and deadline errors. */
  name: string;
  intervalMs: number;
  stepsPerTickMax: number;
}

/** `step` resolves true when it did a full batch, so that more may be due at once. */
export function startPeriodic(
  options: PeriodicOptions,
  step: () => Promise<boolean>,
  logger: Logger,
): PeriodicJob {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    const untilMs = performance.now() + options.intervalMs / 2;
    for (let n = 0; n < options.stepsPerTickMax && !stopped && performance.now() < untilMs; n++) {
      const more = await settleWithin(step(), Math.max(options.intervalMs, 10_000), options.name);
      if (!more) return;
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick).catch((error) => logger.warn(`${options.name} failed`, { error }));
  }, options.intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
