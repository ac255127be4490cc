/**
 * Poison records on the aggregator's input, against the real stage process, broker and Postgres (a
 * schema of this file's own): records whose insert Postgres refuses for good (an event time out of
 * timestamptz's range, an alert id too large for the dedupe index) and records with NUL in their text
 * (refused at decode now; before, Postgres refused their insert with 22021/22P05 and the stage retried
 * the batch 20 times and exited). Every bad one ends in `<topic>.dlq` once with its reason; every
 * valid one gets its row and its notifications.ready record exactly once; the stage keeps running,
 * counts the dead letters by reason class and commits past all of them.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, consumeOnceAssigned, quiet, TopicReader } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, stopStage } from "../../harness/stages.ts";
import { AlertStatus, DeliveryPolicySchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { Admin, Consumer, Producer } from "../../src/kafka/index.ts";
import { deadLetterHeaders } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";
import { metric } from "../evaluator/helpers.ts";
import { aggregatorTopics, alertMatched, decodeReady, startAggregator, text } from "./support.ts";

const db = useTestSchema("aggregator_poison");
const { sql } = db;
let producer: Producer;
let stage: StageProcess | undefined;
const readers: TopicReader[] = [];

beforeAll(async () => {
  producer = new Producer({ brokers, logger: quiet });
});

afterAll(async () => {
  if (stage) await stopStage(stage);
  await Promise.all(readers.map((r) => r.close()));
  await producer.close();
});

/** Random base64: incompressible, so Postgres cannot squeeze it under the index row limit. */
function incompressible(chars: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil((chars * 3) / 4)));
  return Buffer.from(bytes).toString("base64").slice(0, chars);
}

test("records refused for good are dead-lettered one at a time; valid ones are stored and announced once", async () => {
  const topics = await aggregatorTopics("agg-poison");
  stage = await startAggregator(db, topics);
  const ready = new TopicReader(topics.output);
  const dlq = new TopicReader(deadLetterTopic(topics.input));
  readers.push(ready, dlq);

  const clientId = crypto.randomUUID();
  const ruleIds = [crypto.randomUUID()];
  const valid = Array.from({ length: 120 }, (_, i) => `ok-${i}`);
  const bad: { alertId: string; value: Uint8Array; field: string; reason: RegExp; kind: string }[] = [
    {
      alertId: "far-future",
      value: alertMatched({ clientId, ruleIds, alertId: "far-future", eventTimeUnixMs: 2n ** 62n }),
      field: "value",
      reason: /^value: postgres 22008: timestamp out of range/,
      kind: "postgres_22",
    },
    {
      alertId: "huge-id",
      value: alertMatched({ clientId, ruleIds, alertId: `huge-${incompressible(6000)}` }),
      field: "value",
      reason:
        /^value: postgres 54000: index row size \d+ exceeds btree version \d maximum \d+ for index "notifications_dedupe"/,
      kind: "postgres_54",
    },
    {
      alertId: "nul-context",
      value: alertMatched({
        clientId,
        ruleIds,
        alertId: "nul-context",
        context: { db_password: "a\u0000b" },
      }),
      field: "context.db_password",
      reason: /^context\.db_password: contains a NUL character at position 1$/,
      kind: "invalid",
    },
    {
      alertId: "nul-name",
      value: alertMatched({ clientId, ruleIds, alertId: "nul-name", name: "cpu\u0000" }),
      field: "name",
      reason: /^name: contains a NUL character at position 3$/,
      kind: "invalid",
    },
    {
      alertId: "muted-not-uuid",
      value: alertMatched({ clientId, ruleIds, alertId: "muted-not-uuid", mutedByRule: "rule-7" }),
      field: "muted_by_rule",
      reason: /^muted_by_rule: not a UUID$/,
      kind: "invalid",
    },
    {
      alertId: "repeat-zero",
      value: alertMatched({
        clientId,
        ruleIds,
        alertId: "repeat-zero",
        status: AlertStatus.FIRING,
        policy: create(DeliveryPolicySchema, { repeatIntervalMs: 0n }),
      }),
      field: "policy.repeat_interval_ms",
      reason: /^policy\.repeat_interval_ms: not within 1000\.\.2073600000$/,
      kind: "invalid",
    },
    {
      // Stored, it would fail every later window's date arithmetic, for every client's groups.
      alertId: "group-interval-huge",
      value: alertMatched({
        clientId,
        ruleIds,
        alertId: "group-interval-huge",
        policy: create(DeliveryPolicySchema, {
          groupBy: ["source"],
          groupIntervalMs: 100_000_000_000_000_000n,
        }),
      }),
      field: "policy.group_interval_ms",
      reason: /^policy\.group_interval_ms: not within 1000\.\.86400000$/,
      kind: "invalid",
    },
    {
      alertId: "group-max-huge",
      value: alertMatched({
        clientId,
        ruleIds,
        alertId: "group-max-huge",
        policy: create(DeliveryPolicySchema, { groupBy: ["source"], groupAlertsMax: 4_000_000_000 }),
      }),
      field: "policy.group_alerts_max",
      reason: /^policy\.group_alerts_max: not within 1\.\.1000$/,
      kind: "invalid",
    },
    {
      // It names the route: a record may not open the route of a rule it does not carry.
      alertId: "mute-rule-foreign",
      value: alertMatched({
        clientId,
        ruleIds,
        alertId: "mute-rule-foreign",
        policy: create(DeliveryPolicySchema, { muteRuleId: crypto.randomUUID() }),
      }),
      field: "policy.mute_rule_id",
      reason: /^policy\.mute_rule_id: not the record's one rule$/,
      kind: "invalid",
    },
    {
      alertId: "muted-by-other-rule",
      value: alertMatched({
        clientId,
        ruleIds,
        alertId: "muted-by-other-rule",
        mutedByRule: crypto.randomUUID(),
      }),
      field: "muted_by_rule",
      reason: /^muted_by_rule: not the route's rule \(policy\.mute_rule_id\)$/,
      kind: "invalid",
    },
    {
      alertId: "nul-key",
      value: alertMatched({ clientId, ruleIds, alertId: "nul-key", context: { "\u0000": "v" } }),
      field: "context",
      reason: /^context: a key contains a NUL character at position 0$/,
      kind: "invalid",
    },
  ];
  // The bad records among the valid ones, all under one key: one partition, shared batches.
  const records = valid.map((alertId) => ({
    topic: topics.input,
    key: clientId,
    value: alertMatched({ clientId, ruleIds, alertId }),
    headers: { id: alertId },
  }));
  for (const [i, { alertId, value }] of bad.entries())
    records.splice(10 + i * 23, 0, { topic: topics.input, key: clientId, value, headers: { id: alertId } });
  await producer.send(records);

  expect(await dlq.until((r) => r.length >= bad.length, 60_000)).toBe(true);
  expect(await ready.until((r) => r.length >= valid.length, 60_000)).toBe(true);
  await Bun.sleep(1000); // a duplicate would show up now

  // The stage is still running and counted the dead letters by reason class.
  expect(stage.process.exitCode).toBeNull();
  for (const kind of ["invalid", "postgres_22", "postgres_54"]) {
    const expected = bad.filter((b) => b.kind === kind).length;
    expect({
      kind,
      count: await metric(stage.httpPort, "records_dead_lettered_total", `reason="${kind}"`),
    }).toEqual({ kind, count: expected });
  }

  // Each bad record exactly once, with its field and reason and its original bytes.
  expect(dlq.records.map((r) => text(r.headers.get("id"))).sort()).toEqual(bad.map((b) => b.alertId).sort());
  for (const expected of bad) {
    const record = dlq.records.find((r) => text(r.headers.get("id")) === expected.alertId);
    if (!record) throw new Error(`no dead letter for ${expected.alertId}`);
    expect({ id: expected.alertId, field: text(record.headers.get(deadLetterHeaders.field)) }).toEqual({
      id: expected.alertId,
      field: expected.field,
    });
    expect(text(record.headers.get(deadLetterHeaders.reason))).toMatch(expected.reason);
    expect(text(record.headers.get(deadLetterHeaders.stage))).toBe("aggregator");
    expect(Buffer.from(record.value ?? new Uint8Array()).equals(Buffer.from(expected.value))).toBe(true);
  }

  // Every valid record: one row, one notifications.ready for it; nothing for the bad ones.
  const rows = await sql<{ id: string; alert_id: string }[]>`
    SELECT id::text, alert_id FROM notifications WHERE client_id = ${clientId}`;
  expect(
    countDeliveries(
      valid,
      rows.map((r) => r.alert_id),
    ),
  ).toMatchObject({ lost: [], duplicated: [], unexpected: [] });
  expect(
    countDeliveries(
      rows.map((r) => r.id),
      ready.records.map((r) => String(decodeReady(r).notificationId)),
    ),
  ).toMatchObject({ lost: [], duplicated: [], unexpected: [] });

  // It committed past all of them: once stopped, the group's offsets are at the end of every partition.
  expect(await stopStage(stage, 10_000)).toBe(0);
  stage = undefined;
  const probe = new Consumer({ brokers, groupId: topics.group, topics: [topics.input], logger: quiet });
  try {
    const kafkaAdmin = new Admin(brokers, {}, quiet);
    const ends = [0, 1, 2].map((partition) => kafkaAdmin.watermarks(topics.input, partition).high);
    kafkaAdmin.close();
    expect(ends.reduce((a, b) => a + b, 0)).toBe(records.length);
    // A partition nothing was committed on (it got no record) reports a negative offset.
    let committed: number[] = [];
    await eventually(() => {
      committed = probe
        .committed([0, 1, 2].map((partition) => ({ topic: topics.input, partition })))
        .map((p) => Math.max(p.offset, 0));
      return committed.every((offset, i) => offset === ends[i]);
    }, 10_000);
    expect(committed).toEqual(ends);
    // And a member of the group is given nothing to redo.
    expect(await consumeOnceAssigned(probe, 500)).toEqual([]);
  } finally {
    await probe.close();
  }
}, 120_000);
