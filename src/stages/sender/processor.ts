/** The sender's consume side: notifications.ready -> claim -> dispatch. It produces nothing. */
import { fromBinary } from "@bufbuild/protobuf";
import type { DeliveryStore } from "../../adapters/delivery-store.ts";
import { type NotificationReady, NotificationReadySchema } from "../../gen/alerting/v1/alert_pb.ts";
import type { ConsumedRecord } from "../../kafka/index.ts";
import type { Processor } from "../../runtime/consume-loop.ts";
import { InvalidRecordError } from "../../runtime/dead-letter.ts";
import type { Logger } from "../../runtime/log.ts";
import type { Dispatcher } from "./dispatcher.ts";

export function decodeNotificationReady(record: ConsumedRecord): string {
  let message: NotificationReady;
  try {
    message = fromBinary(NotificationReadySchema, record.value ?? new Uint8Array(0));
  } catch (error) {
    throw new InvalidRecordError("value", `not a NotificationReady protobuf: ${(error as Error).message}`);
  }
  if (message.schemaVersion > 1)
    throw new InvalidRecordError("schema_version", `unsupported version ${message.schemaVersion}`);
  if (message.notificationId <= 0n)
    throw new InvalidRecordError("notification_id", "missing or not positive");
  return String(message.notificationId);
}

export interface SenderProcessor extends Processor<string> {
  /** Waits (bounded) for deliveries still running; what does not finish is re-driven after its lease. */
  drain(timeoutMs: number): Promise<void>;
}

/**
 * The claim is the durable step: once rows are SENDING under a lease, a crash leaves them to the
 * scheduler, so the offsets can be committed while delivery continues. Up to `dispatchesMax`
 * batches deliver concurrently; one more makes the consume loop wait (backpressure).
 */
export function createSenderProcessor(
  store: DeliveryStore,
  dispatcher: Dispatcher,
  logger: Logger,
  dispatchesMax: number,
): SenderProcessor {
  const running = new Set<Promise<void>>();
  return {
    decode: decodeNotificationReady,
    async process(batch) {
      // Rows already claimed elsewhere or already terminal are skipped by the claim itself.
      const { claimed, work } = await store.claimWithWork([...new Set(batch.map((d) => d.value))]);
      const dispatch = dispatcher
        .dispatch(claimed, work)
        .then(() => undefined)
        .catch((error: unknown) =>
          logger.warn("dispatch failed; the rows are re-driven after their lease", { error }),
        )
        .finally(() => running.delete(dispatch));
      running.add(dispatch);
      while (running.size >= dispatchesMax) await Promise.race(running);
      return [];
    },
    async drain(timeoutMs) {
      await Promise.race([Promise.allSettled(running), Bun.sleep(timeoutMs)]);
    },
  };
}
