/** The sender's consume side: notifications.ready -> claim -> dispatch. It produces nothing. */
import { fromBinary } from "@bufbuild/protobuf";
import type { DeliveryStore } from "../../adapters/delivery-store.ts";
import { type NotificationReady, NotificationReadySchema } from "../../gen/alerting/v1/alert_pb.ts";
import type { ConsumedRecord } from "../../kafka/index.ts";
import type { Processor } from "../../runtime/consume-loop.ts";
import { InvalidRecordError } from "../../runtime/dead-letter.ts";
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

export function createSenderProcessor(store: DeliveryStore, dispatcher: Dispatcher): Processor<string> {
  return {
    decode: decodeNotificationReady,
    async process(batch) {
      // Rows already claimed elsewhere or already terminal are skipped by the claim itself.
      const ids = [...new Set(batch.map((d) => d.value))];
      await dispatcher.dispatch(await store.claim(ids));
      return [];
    },
  };
}
