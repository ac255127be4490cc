/**
 * The notifications.ready record that announces a stored notification to the sender: written by the
 * aggregator for every row it inserts, and by the console's "Send test".
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { NotificationReadySchema } from "../gen/alerting/v1/alert_pb.ts";
import type { ProduceRecord } from "../kafka/index.ts";
import type { PendingNotification } from "./notification-store.ts";

const utf8 = new TextEncoder();

/** Keyed by client, so one client's notifications keep their order on one partition. */
export function notificationReadyRecord(row: PendingNotification, topic: string): ProduceRecord {
  return {
    topic,
    key: utf8.encode(row.clientId),
    value: toBinary(
      NotificationReadySchema,
      create(NotificationReadySchema, {
        notificationId: BigInt(row.id),
        clientId: row.clientId,
        alertId: row.alertId,
        schemaVersion: 1,
      }),
    ),
  };
}
