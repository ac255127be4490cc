/**
 * The whole pipeline, every stage its own process, against the real broker, Postgres and Redis:
 * rules created through the API, alerts produced to Kafka, notifications counted at a webhook sink.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { Severity } from "../../src/gen/alerting/v1/alert_pb.ts";

const db = useTestSchema("e2e_pipeline");
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline({ postgresUrl: db.url });
}, 60_000);

afterAll(async () => {
  // Every stage shuts down cleanly on SIGTERM within its bound.
  expect(await pipeline.stop()).toEqual(pipeline.stages.map(() => 0));
});

test("a known alert stream gives exactly the expected notifications at the sink", async () => {
  const versionBefore = await pipeline.rulesVersionApplied();
  const { clientId } = await pipeline.createClientWithRule("cpu-high");
  expect(await eventually(async () => (await pipeline.rulesVersionApplied()) > versionBefore, 15_000)).toBe(
    true,
  );

  const expectedIds = Array.from({ length: 300 }, (_, i) => `cpu-${pipeline.run}-${i}`);
  await pipeline.producer.send([
    ...expectedIds.map((id) => ({
      topic: pipeline.topics.alertsNew,
      key: id,
      value: pipeline.alert(id, "cpu-high"),
    })),
    // Alerts no rule matches, and records that are not alerts at all.
    ...Array.from({ length: 50 }, (_, i) => ({
      topic: pipeline.topics.alertsNew,
      key: `x${i}`,
      value: pipeline.alert(`other-${i}`, "unmatched"),
    })),
    { topic: pipeline.topics.alertsNew, key: "garbage", value: new Uint8Array([0xff, 0xff, 0xff]) },
    {
      topic: pipeline.topics.alertsNew,
      key: "no-severity",
      value: pipeline.alert("bad", "cpu-high", Severity.UNSPECIFIED),
    },
  ]);

  const sentRows = async () =>
    (
      await pipeline.sql`SELECT count(*)::int AS n FROM notifications WHERE client_id = ${clientId} AND status = 'SENT'`
    )[0]?.n;
  expect(await eventually(async () => (await sentRows()) === expectedIds.length, 30_000, 200)).toBe(true);

  const rows = await pipeline.sql<{ alert_id: string; status: string }[]>`
    SELECT alert_id, status FROM notifications WHERE client_id = ${clientId}`;
  const rowCount = countDeliveries(
    expectedIds,
    rows.map((r) => r.alert_id),
  );
  expect(rowCount.lost).toEqual([]);
  expect(rowCount.duplicated).toEqual([]);
  expect(rowCount.unexpected).toEqual([]);

  const deliveries = pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}`);
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
      const id = `disk-${pipeline.run}-${i}`;
      produced.push({ id, atMs: Date.now() });
      await pipeline.producer.send([
        { topic: pipeline.topics.alertsNew, key: id, value: pipeline.alert(id, "disk-full") },
      ]);
      await Bun.sleep(20);
    }
  })();
  await Bun.sleep(500);
  const { clientId } = await pipeline.createClientWithRule("disk-full");
  const createdAtMs = Date.now();
  await Bun.sleep(3000);
  streaming = false;
  await stream;

  const mustMatch = produced.filter((p) => p.atMs >= createdAtMs + 1000).map((p) => p.id);
  expect(mustMatch.length).toBeGreaterThan(50);
  const matched = async () =>
    new Set(
      (
        await pipeline.sql<
          { alert_id: string }[]
        >`SELECT alert_id FROM notifications WHERE client_id = ${clientId}`
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

test("a rule with group_by (rule API -> evaluator policy -> group): one Alertmanager document for the window", async () => {
  const versionBefore = await pipeline.rulesVersionApplied();
  const { clientId } = await pipeline.createClientWithRule("grouped-cpu", {
    group_by: ["name"],
    group_wait_ms: 1500,
    group_interval_ms: 1000,
    group_alerts_max: 5,
  });
  // The rule service built a snapshot with the rule, and the evaluator applied it.
  expect(await eventually(async () => (await pipeline.rulesVersionApplied()) > versionBefore, 15_000)).toBe(
    true,
  );
  const ids = Array.from({ length: 20 }, (_, i) => `grp-${pipeline.run}-${i}`);
  await pipeline.producer.send(
    ids.map((id) => ({
      topic: pipeline.topics.alertsNew,
      key: id,
      value: pipeline.alert(id, "grouped-cpu"),
    })),
  );
  const sentRows = async () =>
    (
      await pipeline.sql`SELECT count(*)::int AS n FROM notifications WHERE client_id = ${clientId} AND status = 'SENT'`
    )[0]?.n;
  expect(await eventually(async () => (await sentRows()) === ids.length, 30_000, 200)).toBe(true);
  await Bun.sleep(500);

  const posts = pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}`);
  expect(posts).toHaveLength(1);
  const body = JSON.parse(posts[0]?.body ?? "{}");
  expect(body).toMatchObject({
    version: "4",
    status: "firing",
    groupLabels: { alertname: "grouped-cpu" },
    commonLabels: { alertname: "grouped-cpu", severity: "HIGH" },
    truncatedAlerts: 15,
  });
  expect(body.alerts).toHaveLength(5);
  expect([...body.alertIds].sort()).toEqual([...ids].sort());
  const [group] = await pipeline.sql<{ incarnation: string }[]>`
    SELECT incarnation::text FROM notification_groups WHERE group_key = ${body.groupKey}`;
  expect(posts[0]?.headers.get("idempotency-key")).toBe(`group-${body.groupKey}-${group?.incarnation}-0`);
  const sends = await pipeline.sql<{ n: number }[]>`
    SELECT count(DISTINCT group_send_id)::int AS n FROM notifications WHERE client_id = ${clientId}`;
  expect(sends[0]?.n).toBe(1);
}, 60_000);

test("an ungrouped rule is not held back by a grouped rule of its client: each route is its own notification", async () => {
  const versionBefore = await pipeline.rulesVersionApplied();
  const { clientId } = await pipeline.createClientWithRule("routed-disk");
  const grouped = await pipeline.api("POST", "/api/v1/rules", {
    client_id: clientId,
    severity: "*",
    source: pipeline.source,
    name: "routed-disk",
    group_by: ["name"],
    group_wait_ms: 8000,
  });
  expect(grouped.status).toBe(201);
  const endpoint = await pipeline.api("POST", `/api/v1/rules/${grouped.body.id}/endpoints`, {
    type: "webhook",
    value: pipeline.sink.url(`/hook/${clientId}/grouped`),
  });
  expect(endpoint.status).toBe(201);
  expect(
    await eventually(async () => (await pipeline.rulesVersionApplied()) > versionBefore + 1, 15_000),
  ).toBe(true);

  const ids = Array.from({ length: 3 }, (_, i) => `routed-${pipeline.run}-${i}`);
  await pipeline.producer.send(
    ids.map((id) => ({
      topic: pipeline.topics.alertsNew,
      key: id,
      value: pipeline.alert(id, "routed-disk"),
    })),
  );
  const postsTo = (path: string) => pipeline.sink.received.filter((r) => r.path === path);
  // The ungrouped rule's endpoint gets each alert at once, well inside the other rule's group_wait.
  expect(await eventually(async () => postsTo(`/hook/${clientId}`).length === ids.length, 6_000, 50)).toBe(
    true,
  );
  expect(postsTo(`/hook/${clientId}/grouped`)).toHaveLength(0);
  // The grouped rule's endpoint gets them together once its group_wait is over.
  expect(await eventually(async () => postsTo(`/hook/${clientId}/grouped`).length === 1, 30_000, 200)).toBe(
    true,
  );
  const body = JSON.parse(postsTo(`/hook/${clientId}/grouped`)[0]?.body ?? "{}");
  expect([...body.alertIds].sort()).toEqual([...ids].sort());
  await Bun.sleep(500);
  expect(postsTo(`/hook/${clientId}`)).toHaveLength(ids.length);
  expect(postsTo(`/hook/${clientId}/grouped`)).toHaveLength(1);
  // Two rows per alert, one per route, each with only its route's rule, both SENT.
  const rows = await pipeline.sql<
    { ungrouped: boolean; rules: number; grouped: boolean; status: string; n: number }[]
  >`
    SELECT route = '' AS ungrouped, cardinality(rule_ids)::int AS rules, group_key IS NOT NULL AS grouped, status,
           count(*)::int AS n
    FROM notifications WHERE client_id = ${clientId}
    GROUP BY 1, 2, 3, 4 ORDER BY 1`;
  expect(rows).toEqual([
    { ungrouped: false, rules: 1, grouped: true, status: "SENT", n: ids.length },
    { ungrouped: true, rules: 1, grouped: false, status: "SENT", n: ids.length },
  ] as never);
}, 60_000);
