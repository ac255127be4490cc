/** The console's "Send test" and load panel through the rule-service route table, against real Postgres and Kafka. */
import { afterAll, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { brokers, kafkaClients, quiet, TopicReader } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { readAlertNew } from "../../src/core/wire.ts";
import { NotificationReadySchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { consoleSettings, startConsole } from "../../src/stages/rule-service/console.ts";
import { createClient, createRule, insertWindowInFlight, type Service, startService } from "./helpers.ts";

const { admin, producer } = kafkaClients();
const notificationsTopic = uniqueName("test-console.notifications.ready");
const alertsTopic = uniqueName("test-console.alerts.new");
const consoleSettingsUsed = consoleSettings({
  CONSOLE_NOTIFICATIONS_TOPIC: notificationsTopic,
  CONSOLE_ALERTS_TOPIC: alertsTopic,
});
const consoleParts = startConsole(consoleSettingsUsed, {
  brokers,
  producer,
  logger: quiet,
});
const db = useTestSchema("rule_service_console_routes");
const service: Service = startService(db, { console: consoleParts });
afterAll(async () => {
  await service.stop();
  await consoleParts.stop();
});

test("Send test stores one row and announces it on notifications.ready; another tenant gets 404", async () => {
  await admin.createTopics([{ name: notificationsTopic, partitions: 1 }]);
  const reader = new TopicReader(notificationsTopic);
  try {
    const client = await createClient(service);
    const other = await createClient(service);
    const rule = await createRule(service, client);
    const endpoint = await service.call("POST", `/api/v1/rules/${rule.id}/endpoints`, {
      token: client.key,
      body: { type: "webhook", value: "http://203.0.113.7:8080/hook" },
    });
    expect(endpoint.status).toBe(201);
    const path = `/api/v1/console/endpoints/${endpoint.body.id}/test`;

    expect((await service.call("POST", path, { token: other.key })).status).toBe(404);
    const sent = await service.call("POST", path, { token: client.key });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ topic: notificationsTopic, produced: true });

    const rows = await service.sql<{ id: string; client_id: string; source: string; rule_ids: string[] }[]>`
      SELECT id, client_id, source, rule_ids FROM notifications WHERE alert_id = ${sent.body.alert_id}`;
    expect([...rows]).toEqual([
      { id: sent.body.notification_id, client_id: client.id, source: "console", rule_ids: [rule.id] },
    ]);
    expect(await reader.until((r) => r.length >= 1)).toBe(true);
    expect(reader.records).toHaveLength(1);
    const ready = fromBinary(NotificationReadySchema, reader.records[0]?.value ?? new Uint8Array());
    expect({ id: String(ready.notificationId), clientId: ready.clientId, alertId: ready.alertId }).toEqual({
      id: sent.body.notification_id,
      clientId: client.id,
      alertId: sent.body.alert_id,
    });
    expect(new TextDecoder().decode(reader.records[0]?.key ?? undefined)).toBe(client.id);
  } finally {
    await reader.close();
  }
}, 60_000);

test("the load panel stamps the scope asked for on every alert, and refuses a malformed one naming it", async () => {
  await admin.createTopics([{ name: alertsTopic, partitions: 1 }]);
  const reader = new TopicReader(alertsTopic);
  try {
    const bad = await service.call("POST", "/api/v1/console/load", {
      body: { rate: 50, duration_s: 1, scope: "tenant-b" },
    });
    expect({ status: bad.status, fields: bad.body?.error?.fields }).toEqual({
      status: 400,
      fields: { scope: "--scope: expected client:<client id> or shared:<name>" },
    });
    const scope = `client:${crypto.randomUUID()}`;
    const started = await service.call("POST", "/api/v1/console/load", {
      body: { rate: 50, duration_s: 1, scope },
    });
    expect(started.status).toBe(202);
    expect(await reader.until((r) => r.length >= 50)).toBe(true);
    expect(new Set(reader.records.map((r) => readAlertNew(r.value ?? new Uint8Array()).scope))).toEqual(
      new Set([scope]),
    );
  } finally {
    await reader.close();
  }
}, 60_000);

test("stats count a grouped row of a window in flight as SENDING, as the list shows it", async () => {
  const client = await createClient(service);
  await insertWindowInFlight(service.sql, client.id);
  const stats = await service.call("GET", "/api/v1/console/stats", { token: client.key });
  expect(stats.body.notifications_by_status).toEqual({ RECEIVED: 1, SENDING: 1 });
});
