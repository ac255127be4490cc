/**
 * The lifecycle sweep (src/core/lifecycle.ts): every `intervalMs`, resolve firing alerts whose ends-at
 * or resolve timeout passed and remind of those whose repeat interval passed, a bounded number of
 * states per statement. Any number of aggregator instances may run it: each takes the states no other
 * one holds (FOR UPDATE SKIP LOCKED).
 */
import { sweepAlertStates } from "../../adapters/notification-store.ts";
import type { Sql } from "../../adapters/postgres.ts";
import type { SweepSettings } from "../../core/lifecycle.ts";
import type { Logger } from "../../runtime/log.ts";
import { type PeriodicJob, startPeriodic } from "../../runtime/periodic.ts";

export interface SweepOptions extends SweepSettings {
  intervalMs: number;
  /** States per statement; a full batch is followed at once by the next. */
  batchSizeMax: number;
}

/** Statements per tick, so one tick ends even when every state is due. */
const batchesPerTickMax = 20;

export function startSweep(sql: Sql, options: SweepOptions, logger: Logger): PeriodicJob {
  return startPeriodic(
    { name: "alert state sweep", intervalMs: options.intervalMs, stepsPerTickMax: batchesPerTickMax },
    async () => {
      const { due, written } = await sweepAlertStates(sql, options, options.batchSizeMax);
      if (written > 0) logger.info("sweep wrote notifications", { count: written });
      // States changed without a row (a resolution not sent, a reminder with nobody to tell) count too.
      return due >= options.batchSizeMax;
    },
    logger,
  );
}
