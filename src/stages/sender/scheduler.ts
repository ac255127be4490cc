/**
 * Re-drives what no notifications.ready record will bring again: retries that came due, leases of
 * crashed senders that expired, RECEIVED rows past their safety net. Runs beside the consume loop,
 * so a slow retry never blocks a partition.
 */
import type { DeliveryStore } from "../../adapters/delivery-store.ts";
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

export function startScheduler(
  store: Pick<DeliveryStore, "claimDue">,
  dispatcher: Pick<Dispatcher, "dispatch">,
  logger: Logger,
  options: { intervalMs: number; batchSizeMax: number; passTimeoutMs: number },
): Scheduler {
  let running = true;
  let wake: () => void = () => {};
  const { failed, fail } = failureLatch();

  /** Claims and dispatches one batch of due rows; returns how many were claimed. */
  const pass = async (): Promise<number> => {
    const due = await store.claimDue(options.batchSizeMax);
    if (due.length > 0) {
      const counts = await dispatcher.dispatch(due);
      logger.info("re-drove due notifications", { claimed: due.length, ...counts });
    }
    return due.length;
  };

  const loop = (async () => {
    while (running) {
      try {
        const claimed = await settleWithin(pass(), options.passTimeoutMs, "a scheduler pass");
        // A full batch means more may be due: go again at once.
        if (claimed === options.batchSizeMax) continue;
      } catch (error) {
        if (error instanceof DeadlineError) {
          fail(error);
          return;
        }
        logger.warn("scheduler pass failed, will retry", { error });
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, options.intervalMs);
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
