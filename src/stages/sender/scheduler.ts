/**
 * Re-drives what no notifications.ready record will bring again: retries that came due, leases of
 * crashed senders that expired, RECEIVED rows past their safety net; and drives grouped rows, which
 * no record announces: due group windows, and group sends whose retry or expired lease came due.
 * Runs beside the consume loop, so a slow retry never blocks a partition.
 */
import type { DeliveryStore } from "../../adapters/delivery-store.ts";
import type { GroupStore } from "../../adapters/group-store.ts";
import { DeadlineError, failureLatch, settleWithin } from "../../runtime/deadline.ts";
import type { Logger } from "../../runtime/log.ts";
import type { Dispatcher } from "./dispatcher.ts";

export interface Scheduler {
  /**
   * Rejects with a DeadlineError when a pass did not settle within `passTimeoutMs` (a database call
   * that never answers): the loop has stopped, and the stage must exit to be restarted.
   */
  readonly failed: Promise<never>;
  /** Stops after the pass in flight, waiting for it at most `timeoutMs` (its rows are leased). */
  stop(timeoutMs?: number): Promise<void>;
}

const groupWakeMinMs = 20;

export function startScheduler(
  store: Pick<DeliveryStore, "claimDue">,
  dispatcher: Pick<Dispatcher, "dispatch" | "dispatchGroups">,
  logger: Logger,
  options: {
    intervalMs: number;
    batchSizeMax: number;
    passTimeoutMs: number;
    /** Without it no group is driven (a sender that only delivers ungrouped rows, in tests). */
    groups?: { store: Pick<GroupStore, "claimDue" | "nextDueInMs">; sendsPerPassMax: number };
  },
): Scheduler {
  let running = true;
  let wake: () => void = () => {};
  const { failed, fail } = failureLatch();

  const groups = options.groups;

  /**
   * Until the next pass: at once after a full batch (more may be due), else the interval, or sooner
   * when a group's next window is due sooner (a group_interval shorter than the interval would
   * otherwise slip by up to a whole interval). At least groupWakeMinMs: a window that failed to open
   * is not retried in a tight loop.
   */
  const untilNextPassMs = async (full: boolean): Promise<number> => {
    if (full) return 0;
    const dueInMs = groups === undefined ? null : await groups.store.nextDueInMs();
    if (dueInMs === null) return options.intervalMs;
    return Math.min(options.intervalMs, Math.max(groupWakeMinMs, dueInMs));
  };

  /** Claims and dispatches one batch of due rows and group sends; true when either batch was full. */
  const pass = async (): Promise<boolean> => {
    const due = await store.claimDue(options.batchSizeMax);
    // Dispatched before the groups are claimed, which can take long (lock waits): the rows' leases
    // run from their claim, and their keeper must start with them.
    const dispatched = dispatcher.dispatch(due);
    dispatched.catch(() => {}); // awaited below; handled now in case it fails while groups are claimed
    const sends = groups === undefined ? [] : await groups.store.claimDue(groups.sendsPerPassMax);
    const [counts, groupCounts] = await Promise.all([dispatched, dispatcher.dispatchGroups(sends)]);
    if (due.length > 0) logger.info("re-drove due notifications", { claimed: due.length, ...counts });
    if (sends.length > 0) logger.debug("sent group windows", { sends: sends.length, ...groupCounts });
    // claimDue of groups takes up to sendsPerPassMax re-driven and as many new sends.
    return (
      due.length === options.batchSizeMax || (groups !== undefined && sends.length >= groups.sendsPerPassMax)
    );
  };

  const loop = (async () => {
    while (running) {
      let waitMs = options.intervalMs;
      try {
        waitMs = await settleWithin(pass().then(untilNextPassMs), options.passTimeoutMs, "a scheduler pass");
        if (waitMs === 0) continue;
      } catch (error) {
        if (error instanceof DeadlineError) {
          fail(error);
          return;
        }
        logger.warn("scheduler pass failed, will retry", { error });
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, waitMs);
      });
    }
  })();
  return {
    failed,
    async stop(timeoutMs = 5000) {
      running = false;
      wake();
      await Promise.race([loop, Bun.sleep(timeoutMs)]);
    },
  };
}
