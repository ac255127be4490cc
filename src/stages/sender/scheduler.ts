/**
 * Re-drives what no notifications.ready record will bring again: retries that came due, leases of
 * crashed senders that expired, RECEIVED rows past their safety net. Runs beside the consume loop,
 * so a slow retry never blocks a partition.
 */
import type { DeliveryStore } from "../../adapters/delivery-store.ts";
import type { Logger } from "../../runtime/log.ts";
import type { Dispatcher } from "./dispatcher.ts";

export interface Scheduler {
  stop(): Promise<void>;
}

export function startScheduler(
  store: DeliveryStore,
  dispatcher: Dispatcher,
  logger: Logger,
  options: { intervalMs: number; batchSizeMax: number },
): Scheduler {
  let running = true;
  let wake: () => void = () => {};
  const loop = (async () => {
    while (running) {
      try {
        const due = await store.claimDue(options.batchSizeMax);
        if (due.length > 0) {
          const counts = await dispatcher.dispatch(due);
          logger.info("re-drove due notifications", { claimed: due.length, ...counts });
        }
        // A full batch means more may be due: go again at once.
        if (due.length === options.batchSizeMax) continue;
      } catch (error) {
        logger.warn("scheduler pass failed, will retry", { error });
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, options.intervalMs);
      });
    }
  })();
  return {
    async stop() {
      running = false;
      wake();
      await loop;
    },
  };
}
