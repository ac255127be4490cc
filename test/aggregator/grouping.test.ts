/**
 * The aggregator's side of grouping (src/core/grouping.ts) as a real process: a record whose policy
 * has group_by becomes a row naming its group, due with the group's window, never announced on
 * notifications.ready (the group's schedule drives it); the group is opened once with the settings
 * resolved; resolved notifications of a grouped alert join the same group; a bad group_by label is
 * dead-lettered naming the field.
 */
import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { TopicReader } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { alertmanagerGroupDefaults, groupKey, resolveGrouping } from "../../src/core/grouping.ts";
import { AlertStatus, DeliveryPolicySchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { deadLetterHeaders } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";
import {
  aggregatorTopics,
  alertMatched,
  decodeReady,
  insertClientWithRule,
  startAggregator,
  text,
  useAggregatorFixture,
} from "./support.ts";

const db = useTestSchema("aggregator_grouping");
const { sql, producer, stages, readers, clientIds } = useAggregatorFixture(db);

interface GroupedRow {
  id: string;
  alert_id: string;
  kind: string;
  group_key: string | null;
  due_in_ms: number | null;
  next_attempt_at: Date | null;
}

const rowsOf = (clientId: string) =>
  sql<GroupedRow[]>`
    SELECT id::text, alert_id, kind, group_key, next_attempt_at,
           (extract(epoch FROM group_due_at - created_at) * 1000)::float8 AS due_in_ms
    FROM notifications WHERE client_id = ${clientId} ORDER BY id`;

test("grouped rows name their group, wait for its window, and are not announced", async () => {
  const topics = await aggregatorTopics("agg-grp");
  // Defaults from the stage's settings for what the policy leaves at 0.
  stages.push(await startAggregator(db, topics, { GROUP_WAIT_MS: "45000", GROUP_ALERTS_MAX: "7" }));
  const ready = new TopicReader(topics.output);
  readers.push(ready);
  const client = await insertClientWithRule(sql, "agg-grp");
  clientIds.push(client.clientId);
  const policy = create(DeliveryPolicySchema, { groupBy: ["source", "region"], groupIntervalMs: 2000n });
  const send = (alertId: string, fields: Parameters<typeof alertMatched>[0] = {}) =>
    producer.send([
      {
        topic: topics.input,
        key: client.clientId,
        value: alertMatched({
          clientId: client.clientId,
          ruleIds: [client.ruleId],
          alertId,
          context: { region: "eu" },
          policy,
          ...fields,
        }),
      },
    ]);
  await send("g-1");
  await send("g-2");
  await send("g-3", { source: "other-api" });
  await send("plain", { policy: undefined });
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 4, 20_000)).toBe(true);

  const rows = await rowsOf(client.clientId);
  const settings = resolveGrouping(
    { groupBy: ["source", "region"], groupIntervalMs: 2000 },
    { ...alertmanagerGroupDefaults, groupWaitMs: 45_000, groupAlertsMax: 7 },
  );
  if (settings === undefined) throw new Error("grouping expected");
  const billing = groupKey(client.clientId, settings, { source: "billing-api", region: "eu" });
  const other = groupKey(client.clientId, settings, { source: "other-api", region: "eu" });
  expect(rows.map((r) => [r.alert_id, r.group_key])).toEqual([
    ["g-1", billing],
    ["g-2", billing],
    ["g-3", other],
    ["plain", null],
  ]);
  for (const row of rows.filter((r) => r.group_key !== null)) {
    // The group's first window: group_wait (the stage's default) after it opened; no safety net.
    expect(row.due_in_ms as number).toBeGreaterThan(40_000);
    expect(row.due_in_ms as number).toBeLessThanOrEqual(45_000);
    expect(row.next_attempt_at).toBeNull();
  }
  const groups = await sql<
    { group_key: string; labels: unknown; group_interval_ms: string; group_alerts_max: number }[]
  >`
    SELECT group_key, labels, group_interval_ms::text, group_alerts_max FROM notification_groups
    WHERE client_id = ${client.clientId} ORDER BY group_key`;
  expect([...groups]).toEqual(
    [
      {
        group_key: billing,
        labels: { region: "eu", source: "billing-api" },
        group_interval_ms: "2000",
        group_alerts_max: 7,
      },
      {
        group_key: other,
        labels: { region: "eu", source: "other-api" },
        group_interval_ms: "2000",
        group_alerts_max: 7,
      },
    ].sort((a, b) => (a.group_key < b.group_key ? -1 : 1)),
  );

  // Only the ungrouped row is announced.
  const plainId = rows.find((r) => r.alert_id === "plain")?.id as string;
  expect(await eventually(() => ready.records.length >= 1, 10_000)).toBe(true);
  await Bun.sleep(500);
  expect(ready.records.map((r) => String(decodeReady(r).notificationId))).toEqual([plainId]);
}, 40_000);

test("a grouped alert's resolved notification joins its group; a bad group_by is dead-lettered", async () => {
  const topics = await aggregatorTopics("agg-grp-life");
  stages.push(await startAggregator(db, topics));
  const dlq = new TopicReader(deadLetterTopic(topics.input));
  readers.push(dlq);
  const client = await insertClientWithRule(sql, "agg-grp-life");
  clientIds.push(client.clientId);
  const policy = create(DeliveryPolicySchema, { groupBy: ["name"], groupWaitMs: 60_000n });
  const submit = (status: AlertStatus, eventMs: number, endsAtMs: number) =>
    producer.send([
      {
        topic: topics.input,
        key: client.clientId,
        value: alertMatched({
          clientId: client.clientId,
          scope: `client:${client.clientId}`,
          ruleIds: [client.ruleId],
          alertId: "am-x",
          status,
          eventTimeUnixMs: BigInt(eventMs),
          endsAtUnixMs: BigInt(endsAtMs),
          policy,
        }),
      },
    ]);
  const t0 = Date.now() - 10_000;
  await submit(AlertStatus.FIRING, t0, Date.now() + 600_000);
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 1, 20_000)).toBe(true);
  await submit(AlertStatus.RESOLVED, t0, Date.now() - 1000);
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 2, 20_000)).toBe(true);
  const [firing, resolved] = [...(await rowsOf(client.clientId))] as [GroupedRow, GroupedRow];
  expect([firing.kind, resolved.kind]).toEqual(["firing", "resolved"]);
  expect(firing.group_key).not.toBeNull();
  expect(resolved.group_key).toBe(firing.group_key);

  await producer.send([
    {
      topic: topics.input,
      key: client.clientId,
      value: alertMatched({
        clientId: client.clientId,
        ruleIds: [client.ruleId],
        alertId: "bad-label",
        policy: create(DeliveryPolicySchema, { groupBy: ["source", ""] }),
      }),
    },
  ]);
  expect(await eventually(() => dlq.records.length === 1, 20_000)).toBe(true);
  const record = dlq.records[0];
  expect(text(record?.headers.get(deadLetterHeaders.field))).toBe("policy.group_by");
  expect(text(record?.headers.get(deadLetterHeaders.reason))).toContain("label names must be");
}, 40_000);

test("the sweep's reminders of a grouped alert join its group and mark it waiting", async () => {
  const topics = await aggregatorTopics("agg-grp-sweep");
  stages.push(await startAggregator(db, topics, { REPEAT_INTERVAL_MS: "1000", SWEEP_INTERVAL_MS: "200" }));
  const client = await insertClientWithRule(sql, "agg-grp-sweep");
  clientIds.push(client.clientId);
  await producer.send([
    {
      topic: topics.input,
      key: client.clientId,
      value: alertMatched({
        clientId: client.clientId,
        scope: `client:${client.clientId}`,
        ruleIds: [client.ruleId],
        alertId: "am-sweep",
        status: AlertStatus.FIRING,
        eventTimeUnixMs: BigInt(Date.now()),
        endsAtUnixMs: BigInt(Date.now() + 600_000),
        policy: create(DeliveryPolicySchema, { groupBy: ["source"], groupWaitMs: 60_000n }),
      }),
    },
  ]);
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 1, 20_000)).toBe(true);
  const [firing] = [...(await rowsOf(client.clientId))] as [GroupedRow];
  // As if a sender had just taken the group's rows: only the sweep's reminder can mark it again.
  await sql`UPDATE notification_groups SET has_pending = false WHERE group_key = ${firing.group_key}`;
  expect(await eventually(async () => (await rowsOf(client.clientId)).length >= 2, 20_000)).toBe(true);
  const reminder = (await rowsOf(client.clientId))[1] as GroupedRow;
  expect(reminder.kind).toBe("repeat:1");
  expect(reminder.group_key).toBe(firing.group_key);
  expect(reminder.next_attempt_at).toBeNull();
  const [group] = await sql<{ has_pending: boolean }[]>`
    SELECT has_pending FROM notification_groups WHERE group_key = ${firing.group_key}`;
  expect(group?.has_pending).toBe(true);
}, 40_000);

test("an idle group whose interval has passed waits group_wait again; a waiting one keeps its window", async () => {
  const topics = await aggregatorTopics("agg-grp-idle");
  stages.push(await startAggregator(db, topics, { GROUP_WAIT_MS: "45000" }));
  const client = await insertClientWithRule(sql, "agg-grp-idle");
  clientIds.push(client.clientId);
  const send = (alertId: string) =>
    producer.send([
      {
        topic: topics.input,
        key: client.clientId,
        value: alertMatched({
          clientId: client.clientId,
          ruleIds: [client.ruleId],
          alertId,
          policy: create(DeliveryPolicySchema, { groupBy: ["source"], groupIntervalMs: 2000n }),
        }),
      },
    ]);
  const dueInMs = async () => {
    const [group] = await sql<{ due_in_ms: number }[]>`
      SELECT (extract(epoch FROM next_due_at - now()) * 1000)::float8 AS due_in_ms
      FROM notification_groups WHERE client_id = ${client.clientId}`;
    return group?.due_in_ms;
  };
  await send("first");
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 1, 20_000)).toBe(true);

  // As a sender leaves it after a window went out long ago: nothing waiting, the next window past.
  await sql`UPDATE notification_groups SET has_pending = false, next_due_at = now() - interval '1 minute'
            WHERE client_id = ${client.clientId}`;
  await send("after-quiet");
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 2, 20_000)).toBe(true);
  expect(await dueInMs()).toBeGreaterThan(40_000);

  // Rows already waiting for a past-due window: a new one joins that window, due now.
  await sql`UPDATE notification_groups SET has_pending = true, next_due_at = now() - interval '1 minute'
            WHERE client_id = ${client.clientId}`;
  await send("joins-waiting");
  expect(await eventually(async () => (await rowsOf(client.clientId)).length === 3, 20_000)).toBe(true);
  expect(await dueInMs()).toBeLessThan(0);
}, 40_000);
