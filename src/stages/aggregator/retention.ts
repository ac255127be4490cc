/**
 * Retention (src/adapters/retention-store.ts): every `intervalMs`, delete what is over and older than
 * `retentionMs`, a bounded batch per table and statement, so that notifications, group sends, alert
 * states and groups do not grow for as long as the pipeline runs. Any number of aggregator instances
 * may run it (FOR UPDATE SKIP LOCKED).
 */
import type { Sql } from "../../adapters/postgres.ts";
import { deleteExpired, deleteIdleGroups, type GroupCursor } from "../../adapters/retention-store.ts";
import type { Logger } from "../../runtime/log.ts";
import { type PeriodicJob, startPeriodic } from "../../runtime/periodic.ts";

export interface RetentionOptions {
  retentionMs: number;
  intervalMs: number;
  /** Rows per table and statement, and idle groups examined per statement; a full batch is followed at once by the next. */
  batchSizeMax: number;
}

/**
 * Statements per tick at most; the tick also ends after half the interval. Deleting measured about
 * 90,000 rows/s on the development machines (bench/results/2026-findings.md), some 30 times the
 * pipeline's max rate there.
 */
const batchesPerTickMax = 1000;

export function startRetention(sql: Sql, options: RetentionOptions, logger: Logger): PeriodicJob {
  // Idle groups are walked a slice per step, the pass going on from where the last step left it.
  let groupsAfter: GroupCursor | null = null;
  return startPeriodic(
    { name: "retention", intervalMs: options.intervalMs, stepsPerTickMax: batchesPerTickMax },
    async () => {
      const expired = await deleteExpired(sql, options.retentionMs, options.batchSizeMax);
      const groups = await deleteIdleGroups(sql, options.retentionMs, options.batchSizeMax, groupsAfter);
      groupsAfter = groups.next;
      const deleted = { ...expired, groups: groups.deleted };
      const counts = Object.values(deleted);
      if (counts.some((count) => count > 0)) logger.info("retention deleted rows", deleted);
      // The pass over idle groups goes on at once until it wraps: groups still named in a slice must
      // not hold back those behind them to a slice per tick.
      return Math.max(...counts) >= options.batchSizeMax || groups.next !== null;
    },
    logger,
  );
}
