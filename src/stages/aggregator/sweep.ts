/**
 * The lifecycle sweep (src/core/lifecycle.ts): every `intervalMs`, resolve firing alerts whose ends-at
 * or resolve timeout passed and remind of those whose repeat interval passed, a bounded number of
 * states per statement. Any number of aggregator instances may run it: each takes the states no other
 * one holds (FOR UPDATE SKIP LOCKED). A sweep that does not settle in time (a dead connection) is
 * logged and the next one runs on; a failing one is logged and retried at the next tick.
 */
import { sweepAlertStates } from "../../adapters/notification-store.ts";
import type { Sql } from "../../adapters/postgres.ts";
import type { SweepSettings } from "../../core/lifecycle.ts";
import { settleWithin } from "../../runtime/deadline.ts";
import type { Logger } from "../../runtime/log.ts";

export interface SweepOptions extends SweepSettings {
  intervalMs: number;
  /** States per statement; a full batch is followed at once by the next. */
  batchSizeMax: number;
}

/** Statements per tick, so one tick ends even when every state is due. */
const batchesPerTickMax = 20;

export function startSweep(sql: Sql, options: SweepOptions, logger: Logger): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    for (let batch = 0; batch < batchesPerTickMax && !stopped; batch++) {
      const written = await settleWithin(
        sweepAlertStates(sql, options, options.batchSizeMax),
        Math.max(options.intervalMs, 10_000),
        "alert state sweep",
      );
      if (written > 0) logger.info("sweep wrote notifications", { count: written });
      if (written < options.batchSizeMax) return;
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick).catch((error) => logger.warn("alert state sweep failed", { error }));
  }, options.intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
