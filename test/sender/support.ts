/**
 * Helpers for the sender's integration tests: a notifications.ready topic per test, rows inserted
 * with SQL the way the rule service and the aggregator write them, and NotificationReady records.
 */

import { create, toBinary } from "@bufbuild/protobuf";
import { brokers, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import type { TestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, startStage } from "../../harness/stages.ts";
import type { NotificationInput } from "../../src/adapters/notification-store.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import { deliveryRoute, type GroupSettings, groupKey } from "../../src/core/grouping.ts";
import { NotificationReadySchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { Admin, type ProduceRecord } from "../../src/kafka/index.ts";
import { deadLetterTopicSpec } from "../../src/runtime/topics.ts";
import { ownedPartitions } from "../aggregator/support.ts";

export interface SenderTopic {
  topic: string;
  group: string;
}

export async function senderTopic(prefix: string, partitions = 3): Promise<SenderTopic> {
  const run = uniqueName(prefix);
  const topic = `${run}.notifications.ready`;
  const admin = new Admin(brokers, {}, quiet);
  try {
    await admin.createTopics([{ name: topic, partitions }, deadLetterTopicSpec(topic)]);
  } finally {
    admin.close();
  }
  return { topic, group: `${run}-sender` };
}

/**
 * A sender process in the test file's schema: loopback allowed (the sink lives there), quick scheduler
 * and retries; `env` overrides.
 */
export function startSender(
  db: TestSchema,
  topic: SenderTopic,
  env: Record<string, string> = {},
): Promise<StageProcess> {
  return startStage("sender", {
    POSTGRES_URL: db.url,
    INPUT_TOPIC: topic.topic,
    GROUP_ID: topic.group,
    SSRF_ALLOW_CIDRS: "127.0.0.1/32",
    SCHEDULER_INTERVAL_MS: "100",
    RETRY_BASE_DELAY_MS: "50",
    ...env,
  });
}

/** Until the stages' consumers together own all `partitions`, each of them some. */
export function groupSettled(
  stages: readonly StageProcess[],
  partitions: number,
  timeoutMs = 20_000,
): Promise<boolean> {
  return eventually(() => {
    const owned = stages.map(ownedPartitions);
    const total = owned.reduce((sum, set) => sum + set.size, 0);
    return (
      owned.every((set) => set.size > 0) &&
      new Set(owned.flatMap((set) => [...set])).size === partitions &&
      total === partitions
    );
  }, timeoutMs);
}

export interface Tenant {
  clientId: string;
  rule(): Promise<string>;
  endpoint(
    ruleId: string,
    type: "webhook" | "email" | "slack",
    value: string,
    options?: { secret?: string; enabled?: boolean },
  ): Promise<string>;
  notification(
    ruleIds: string[],
    fields?: { alertId?: string; context?: Record<string, unknown> },
  ): Promise<string>;
}

/** A client of this test: rules, endpoints and notifications rows inserted with SQL. */
export async function tenant(sql: Sql, prefix: string): Promise<Tenant> {
  const [client] = await sql<
    { id: string }[]
  >`INSERT INTO clients (name) VALUES (${uniqueName(prefix)}) RETURNING id`;
  const clientId = (client as { id: string }).id;
  return {
    clientId,
    async rule() {
      const [rule] = await sql<{ id: string }[]>`
        INSERT INTO rules (client_id, severity, source, name)
        VALUES (${clientId}, 'HIGH', ${uniqueName("src")}, 'cpu-high') RETURNING id`;
      return (rule as { id: string }).id;
    },
    async endpoint(ruleId, type, value, options = {}) {
      const [endpoint] = await sql<{ id: string }[]>`
        INSERT INTO endpoints (rule_id, client_id, type, value, secret, enabled)
        VALUES (${ruleId}, ${clientId}, ${type}, ${value}, ${options.secret ?? null}, ${options.enabled ?? true})
        RETURNING id`;
      return (endpoint as { id: string }).id;
    },
    async notification(ruleIds, { alertId = uniqueName("alert"), context = { host: "db-1" } } = {}) {
      // As the aggregator writes it: RECEIVED, with the scheduler's safety net a minute ahead.
      const [row] = await sql<{ id: string }[]>`
        INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time,
                                   next_attempt_at)
        VALUES (${clientId}, ${alertId}, 'HIGH', 'billing-api', 'cpu-high', ${sql.json(context as never)},
                ${ruleIds}::uuid[], '2025-03-01T12:00:00Z', now() + interval '60 seconds')
        RETURNING id::text`;
      return (row as { id: string }).id;
    },
  };
}

/** A grouped row as the aggregator writes it: grouped by `source`, which is its only label here. */
export function groupedRow(
  clientId: string,
  ruleId: string,
  alertId: string,
  source: string,
  settings: GroupSettings,
): NotificationInput {
  const labels = { source };
  return {
    clientId,
    scope: "",
    route: deliveryRoute(settings),
    alertId,
    severity: "HIGH",
    source,
    name: "cpu-high",
    context: {},
    ruleIds: [ruleId],
    eventTimeMs: Date.now(),
    group: { key: groupKey(clientId, settings, labels), labels, settings },
  };
}

export function readyRecord(
  topic: string,
  id: string,
  clientId: string,
  key: string = clientId,
): ProduceRecord {
  return {
    topic,
    key,
    value: toBinary(
      NotificationReadySchema,
      create(NotificationReadySchema, {
        notificationId: BigInt(id),
        clientId,
        alertId: "a",
        schemaVersion: 1,
      }),
    ),
  };
}

export interface NotificationRow {
  id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  lease_until: Date | null;
}

export async function rowsById(sql: Sql, ids: readonly string[]): Promise<Map<string, NotificationRow>> {
  const rows = await sql<NotificationRow[]>`
    SELECT id::text, status, attempts, last_error, next_attempt_at, lease_until
    FROM notifications WHERE id = ANY(${ids as string[]}::bigint[])`;
  return new Map(rows.map((r) => [r.id, r]));
}

export async function rowOf(sql: Sql, id: string): Promise<NotificationRow> {
  return (await rowsById(sql, [id])).get(id) as NotificationRow;
}

/** Until every row has one of `statuses`; false on timeout. */
export function settled(
  sql: Sql,
  ids: readonly string[],
  statuses: string[],
  timeoutMs = 20_000,
): Promise<boolean> {
  return eventually(
    async () =>
      [...(await rowsById(sql, ids)).values()].filter((r) => statuses.includes(r.status)).length ===
      ids.length,
    timeoutMs,
    50,
  );
}

export interface DeliveryRow {
  notification_id: string;
  endpoint_id: string;
  channel: string;
  outcome: string;
  http_status: number | null;
  smtp_reply: string | null;
  latency_ms: number;
  error: string | null;
  attempt: number | null;
  attempted_at: Date;
}

export function deliveriesOf(sql: Sql, ids: readonly string[]): Promise<DeliveryRow[]> {
  return sql<DeliveryRow[]>`
    SELECT notification_id::text, endpoint_id::text, channel, outcome, http_status, smtp_reply, latency_ms, error,
           attempt, attempted_at
    FROM deliveries WHERE notification_id = ANY(${ids as string[]}::bigint[]) ORDER BY id`;
}
