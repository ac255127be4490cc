/**
 * Re-drives what no notifications.ready record will bring again: retries that came due, leases of
 * crashed senders that expired, RECEIVED rows past their safety net; and drives grouped rows, which
 * no record announces: due group windows, and group sends whose retry or expired lease came due.
 * Runs beside the consume loop, so a slow retry never blocks a partition; and its dispatches run
 * beside its passes (up to `dispatchesMax` at once), so one tenant's slow endpoint does not hold back
 * the windows and retries of everyone else.
 */
import type { DeliveryStore } from "../../adapters/delivery-store.ts";
import type { GroupStore } from "../../adapters/group-store.ts";
import { DeadlineError, failureLatch, settleWithin } from "../../runtime/deadline.ts";
import type { Logger } from "../../runtime/log.ts";
import type { Dispatcher } from "./dispatcher.ts";

export interface Scheduler {
  /**
   * Rejects with a DeadlineError when a claim or a dispatch did not settle within `passTimeoutMs` (a
   * database call that never answers): the loop has stopped, and the stage must exit to be restarted.
   */
  readonly failed: Promise<never>;
  /**
   * Stops after the pass in flight, waiting for it and the dispatches in flight at most `timeoutMs`
   * (their rows are leased).
   */
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
    /** Each claim of a pass, and each dispatch it starts, must settle within this. */
    passTimeoutMs: number;
    /** Dispatches in flight at most; a pass waits for a slot before it claims. */
    dispatchesMax: number;
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

  const bounded = <T>(work: Promise<T>, what: string) => settleWithin(work, options.passTimeoutMs, what);

  const dispatches = new Set<Promise<void>>();
  /**
   * Runs a dispatch beside the passes. It has the pass's deadline: one that never settles (a query
   * postgres.js never answers, while the lease keeper renews its rows) fails the stage, as a pass does.
   */
  const track = <T>(dispatch: Promise<T>, done: (result: T) => void, failure: string) => {
    const tracked = bounded(dispatch, "a scheduler dispatch")
      .then(done, (error: unknown) => {
        if (error instanceof DeadlineError) {
          running = false;
          fail(error);
        } else logger.warn(failure, { error });
      })
      .finally(() => dispatches.delete(tracked));
    dispatches.add(tracked);
  };
  /** Waits for a free dispatch slot; false once the scheduler is stopping. */
  const slot = async (): Promise<boolean> => {
    while (running && dispatches.size >= options.dispatchesMax) await Promise.race(dispatches);
    return running;
  };

  /** Claims one batch of due rows and group sends and starts their dispatch; true when either was full. */
  const pass = async (): Promise<boolean> => {
    if (!(await slot())) return false;
    const due = await bounded(store.claimDue(options.batchSizeMax), "claiming due notifications");
    // Dispatched before the groups are claimed, which can take long (lock waits): the rows' leases
    // run from their claim, and their keeper must start with them.
    if (due.length > 0)
      track(
        dispatcher.dispatch(due),
        (counts) => logger.info("re-drove due notifications", { claimed: due.length, ...counts }),
        "re-drive failed; the rows are re-driven after their lease",
      );
    const full = due.length === options.batchSizeMax;
    if (groups === undefined || !(await slot())) return full;
    const sends = await bounded(groups.store.claimDue(groups.sendsPerPassMax), "claiming group sends");
    if (sends.length > 0)
      track(
        dispatcher.dispatchGroups(sends),
        (counts) => logger.debug("sent group windows", { sends: sends.length, ...counts }),
        "group sends failed; they are re-driven after their lease",
      );
    // claimDue of groups takes up to sendsPerPassMax re-driven and as many new sends.
    return full || sends.length >= groups.sendsPerPassMax;
  };

  const loop = (async () => {
    while (running) {
      let waitMs = options.intervalMs;
      try {
        const full = await pass();
        if (!running) return;
        waitMs = await bounded(untilNextPassMs(full), "finding the next group window");
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
      await Promise.race([loop.then(() => Promise.allSettled(dispatches)), Bun.sleep(timeoutMs)]);
    },
  };
}
