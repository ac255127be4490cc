/**
 * The whole pipeline, every stage its own process, against the real broker, Postgres and Redis:
 * rules created through the API, alerts produced to Kafka, notifications counted at a webhook sink.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
import { AlertNewSchema, Severity } from "../../src/gen/alerting/v1/alert_pb.ts";
import { Admin, Producer } from "../../src/kafka/index.ts";
import { infraUrls } from "../../src/runtime/env.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";
import { HttpSink } from "../channels/sink.ts";
import { countDeliveries } from "../support/invariants.ts";
import { uniqueName } from "../support/names.ts";
import { eventually, type StageProcess, startStage, stopStage } from "../support/stages.ts";

const run = uniqueName("e2e");
const topics = {
  alertsNew: `${run}.alerts.new`,
  ruleChanged: `${run}.rule.changed`,
  alertsMatched: `${run}.alerts.matched`,
  notificationsReady: `${run}.notifications.ready`,
};
const adminToken = `admin-${crypto.randomUUID()}`;
const quiet = createLogger("e2e", 40);
const source = `svc-${crypto.randomUUID()}`;
let sink: HttpSink;
let sql: Sql;
let producer: Producer;
let stages: StageProcess[] = [];
let api: (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: Record<string, unknown> }>;

beforeAll(async () => {
  const admin = new Admin(infraUrls.kafkaBrokers);
  await admin.createTopics(
    Object.values(topics).flatMap((name) => [
      { name, partitions: 3 },
      { name: deadLetterTopic(name), partitions: 1 },
    ]),
  );
  admin.close();
  sink = new HttpSink();
  sql = connectPostgres({ idleTimeoutSeconds: 1 });
  producer = new Producer({ brokers: infraUrls.kafkaBrokers, logger: quiet });
  const shared = { RULES_KEY_PREFIX: `${run}:rules:` };
  const started = await Promise.allSettled([
    startStage("rule-service", {
      ...shared,
      ADMIN_TOKEN: adminToken,
      RULE_CHANGED_TOPIC: topics.ruleChanged,
    }),
    startStage("rule-updater", { ...shared, INPUT_TOPIC: topics.ruleChanged, GROUP_ID: `${run}-updater` }),
    startStage("evaluator", {
      ...shared,
      INPUT_TOPIC: topics.alertsNew,
      OUTPUT_TOPIC: topics.alertsMatched,
      GROUP_ID: `${run}-evaluator`,
    }),
    startStage("aggregator", {
      ...shared,
      INPUT_TOPIC: topics.alertsMatched,
      OUTPUT_TOPIC: topics.notificationsReady,
      GROUP_ID: `${run}-aggregator`,
    }),
    startStage("sender", {
      ...shared,
      INPUT_TOPIC: topics.notificationsReady,
      GROUP_ID: `${run}-sender`,
      SSRF_ALLOW_CIDRS: "127.0.0.1/32",
    }),
  ]);
  stages = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failure = started.find((s) => s.status === "rejected");
  if (failure) throw (failure as PromiseRejectedResult).reason;
  const ruleService = stages[0] as StageProcess;
  api = async (method, path, body) => {
    const response = await fetch(`http://127.0.0.1:${ruleService.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
}, 60_000);

afterAll(async () => {
  const exitCodes = await Promise.all(stages.map((stage) => stopStage(stage)));
  await producer.close();
  await sql.end();
  await sink.stop();
  // Every stage shut down cleanly on SIGTERM within its bound.
  expect(exitCodes).toEqual(stages.map(() => 0));
});

function alert(alertId: string, name: string, severity = Severity.HIGH): Uint8Array {
  return toBinary(
    AlertNewSchema,
    create(AlertNewSchema, {
      alertId,
      severity,
      source,
      name,
      context: { host: "db-1", note: "<b>&</b>" },
      eventTimeUnixMs: BigInt(Date.now()),
      schemaVersion: 1,
    }),
  );
}

async function createClientWithRule(name: string): Promise<{ clientId: string; ruleId: string }> {
  const client = await api("POST", "/api/v1/clients", { name: uniqueName("client") });
  expect(client.status).toBe(201);
  const clientId = client.body.id as string;
  const rule = await api("POST", "/api/v1/rules", { client_id: clientId, severity: "HIGH", source, name });
  expect(rule.status).toBe(201);
  const ruleId = rule.body.id as string;
  const endpoint = await api("POST", `/api/v1/rules/${ruleId}/endpoints`, {
    type: "webhook",
    value: sink.url(`/hook/${clientId}`),
  });
  expect(endpoint.status).toBe(201);
  return { clientId, ruleId };
}

async function evaluatorRulesVersion(): Promise<number> {
  const evaluator = stages.find((s) => s.name === "evaluator") as StageProcess;
  const metrics = await (await fetch(`http://127.0.0.1:${evaluator.httpPort}/metrics`)).text();
  return Number(/^rules_version_applied\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? -1);
}

test("a known alert stream gives exactly the expected notifications at the sink", async () => {
  const versionBefore = await evaluatorRulesVersion();
  const { clientId } = await createClientWithRule("cpu-high");
  expect(await eventually(async () => (await evaluatorRulesVersion()) > versionBefore, 15_000)).toBe(true);

  const expectedIds = Array.from({ length: 300 }, (_, i) => `cpu-${run}-${i}`);
  await producer.send([
    ...expectedIds.map((id) => ({ topic: topics.alertsNew, key: id, value: alert(id, "cpu-high") })),
    // Alerts no rule matches, and records that are not alerts at all.
    ...Array.from({ length: 50 }, (_, i) => ({
      topic: topics.alertsNew,
      key: `x${i}`,
      value: alert(`other-${i}`, "unmatched"),
    })),
    { topic: topics.alertsNew, key: "garbage", value: new Uint8Array([0xff, 0xff, 0xff]) },
    { topic: topics.alertsNew, key: "no-severity", value: alert("bad", "cpu-high", Severity.UNSPECIFIED) },
  ]);

  const sentRows = async () =>
    (
      await sql`SELECT count(*)::int AS n FROM notifications WHERE client_id = ${clientId} AND status = 'SENT'`
    )[0]?.n;
  expect(await eventually(async () => (await sentRows()) === expectedIds.length, 30_000, 200)).toBe(true);

  const rows = await sql<{ alert_id: string; status: string }[]>`
    SELECT alert_id, status FROM notifications WHERE client_id = ${clientId}`;
  const rowCount = countDeliveries(
    expectedIds,
    rows.map((r) => r.alert_id),
  );
  expect(rowCount.lost).toEqual([]);
  expect(rowCount.duplicated).toEqual([]);
  expect(rowCount.unexpected).toEqual([]);

  const deliveries = sink.received.filter((r) => r.path === `/hook/${clientId}`);
  const payloads = deliveries.map(
    (r) => JSON.parse(r.body) as { alertId: string; severity: string; context: Record<string, string> },
  );
  const atSink = countDeliveries(
    expectedIds,
    payloads.map((p) => p.alertId),
  );
  expect(atSink.lost).toEqual([]);
  expect(atSink.unexpected).toEqual([]);
  expect(payloads[0]?.severity).toBe("HIGH");
  expect(payloads[0]?.context).toEqual({ host: "db-1", note: "<b>&</b>" });
  // Repeats (none expected here) would have to carry the same Idempotency-Key as the first delivery.
  const keysByAlert = new Map<string, Set<string>>();
  deliveries.forEach((r, i) => {
    const id = payloads[i]?.alertId as string;
    keysByAlert.set(id, (keysByAlert.get(id) ?? new Set()).add(r.headers.get("idempotency-key") ?? ""));
  });
  for (const keys of keysByAlert.values()) expect(keys.size).toBe(1);
}, 90_000);

test("a rule created through the API while alerts flow starts matching within 1 s", async () => {
  const produced: { id: string; atMs: number }[] = [];
  let streaming = true;
  const stream = (async () => {
    for (let i = 0; streaming; i++) {
      const id = `disk-${run}-${i}`;
      produced.push({ id, atMs: Date.now() });
      await producer.send([{ topic: topics.alertsNew, key: id, value: alert(id, "disk-full") }]);
      await Bun.sleep(20);
    }
  })();
  await Bun.sleep(500);
  const { clientId } = await createClientWithRule("disk-full");
  const createdAtMs = Date.now();
  await Bun.sleep(3000);
  streaming = false;
  await stream;

  const mustMatch = produced.filter((p) => p.atMs >= createdAtMs + 1000).map((p) => p.id);
  expect(mustMatch.length).toBeGreaterThan(50);
  const matched = async () =>
    new Set(
      (
        await sql<{ alert_id: string }[]>`SELECT alert_id FROM notifications WHERE client_id = ${clientId}`
      ).map((r) => r.alert_id),
    );
  expect(
    await eventually(
      async () => {
        const ids = await matched();
        return mustMatch.every((id) => ids.has(id));
      },
      20_000,
      200,
    ),
  ).toBe(true);
}, 60_000);
