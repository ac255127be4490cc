/**
 * The aggregator stage as a real process against the real broker and Postgres: one notifications row
 * per (client, scope, alert) whatever the redeliveries, a notifications.ready for every non-terminal row
 * (including rows an earlier, crashed attempt inserted), invalid records dead-lettered with a reason.
 */
import { expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { TopicReader } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { Severity } from "../../src/gen/alerting/v1/alert_pb.ts";
import type { ConsumedRecord } from "../../src/kafka/index.ts";
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

const db = useTestSchema("aggregator");
const { sql, producer, stages, readers, clientIds } = useAggregatorFixture(db);

async function setUp(prefix: string) {
  const topics = await aggregatorTopics(prefix);
  const stage = await startAggregator(db, topics);
  stages.push(stage);
  const ready = new TopicReader(topics.output);
  readers.push(ready);
  return { topics, stage, ready };
}

async function newClient(prefix: string) {
  const client = await insertClientWithRule(sql, prefix);
  clientIds.push(client.clientId);
  return client;
}

interface Row {
  id: string;
  client_id: string;
  alert_id: string;
  severity: string;
  name: string;
  rule_ids: string[];
  status: string;
}

const rowsOf = (clientId: string) =>
  sql<Row[]>`SELECT id::text, client_id::text, alert_id, severity, name, rule_ids::text[], status
             FROM notifications WHERE client_id = ${clientId} ORDER BY id`;

const readyIds = (records: readonly ConsumedRecord[]) =>
  records.map((record) => String(decodeReady(record).notificationId));

test("one row per (client, alert) despite redeliveries and different records for one alert", async () => {
  const { topics, ready } = await setUp("agg-dedupe");
  const a = await newClient("agg-dedupe-a");
  const b = await newClient("agg-dedupe-b");
  const second = await insertClientWithRule(sql, "agg-dedupe-a2");
  const eventTimeMs = Date.now() - 12_345;
  const same = alertMatched({
    clientId: a.clientId,
    alertId: "same",
    ruleIds: [a.ruleId],
    eventTimeUnixMs: BigInt(eventTimeMs),
    context: { host: "db-1", note: "<b>&</b>" },
  });
  const send = (key: string, value: Uint8Array) => ({ topic: topics.input, key, value });

  await producer.send([
    // The same record twice in a row (most likely one batch), then again later (another batch).
    send(a.clientId, same),
    send(a.clientId, same),
    // Two different records for one (client, alert): the first one to arrive wins.
    send(
      a.clientId,
      alertMatched({ clientId: a.clientId, alertId: "twice", severity: Severity.HIGH, ruleIds: [a.ruleId] }),
    ),
    send(
      a.clientId,
      alertMatched({
        clientId: a.clientId,
        alertId: "twice",
        severity: Severity.CRITICAL,
        name: "other-name",
        ruleIds: [second.ruleId],
      }),
    ),
    // Another tenant with the same alert id gets its own row.
    send(b.clientId, alertMatched({ clientId: b.clientId, alertId: "same", ruleIds: [b.ruleId] })),
  ]);
  expect(await ready.until((records) => records.length >= 3, 20_000)).toBe(true);
  await producer.send([send(a.clientId, same)]);
  expect(await ready.until((records) => records.length >= 4, 20_000)).toBe(true);
  await Bun.sleep(500); // anything extra would show up now

  const rowsA = await rowsOf(a.clientId);
  const rowsB = await rowsOf(b.clientId);
  expect(rowsA.map((r) => r.alert_id).sort()).toEqual(["same", "twice"]);
  expect(rowsB.map((r) => r.alert_id)).toEqual(["same"]);
  const twice = rowsA.find((r) => r.alert_id === "twice") as Row;
  expect(twice).toMatchObject({
    severity: "HIGH",
    name: "cpu-high",
    rule_ids: [a.ruleId],
    status: "RECEIVED",
  });

  const allRows = [...rowsA, ...rowsB];
  const seen = countDeliveries(
    allRows.map((r) => r.id),
    readyIds(ready.records),
  );
  expect(seen.lost).toEqual([]);
  expect(seen.unexpected).toEqual([]);
  for (const record of ready.records) {
    const message = decodeReady(record);
    const row = allRows.find((r) => r.id === String(message.notificationId)) as Row;
    expect(message).toMatchObject({ clientId: row.client_id, alertId: row.alert_id, schemaVersion: 1 });
    expect(text(record.key)).toBe(row.client_id);
  }
  // The row stayed RECEIVED, so the later redelivery announced it again.
  const sameA = rowsA.find((r) => r.alert_id === "same") as Row;
  const [stored] = await sql<{ source: string; context: unknown; event_time: Date; next_attempt_at: Date }[]>`
    SELECT source, context, event_time, next_attempt_at FROM notifications WHERE id = ${sameA.id}`;
  expect(stored?.source).toBe("billing-api");
  expect(stored?.context).toEqual({ host: "db-1", note: "<b>&</b>" });
  expect(stored?.event_time.getTime()).toBe(eventTimeMs);
  // The sender's safety net: a RECEIVED row is re-driven by the scheduler a minute later at the latest.
  expect(stored?.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 30_000);
  expect(readyIds(ready.records).filter((id) => id === sameA.id).length).toBeGreaterThanOrEqual(2);
}, 30_000);

test("dedupe is per scope: one alert id in two scopes is two rows, a forged first copy suppresses nothing", async () => {
  const { topics, ready } = await setUp("agg-scope");
  const a = await newClient("agg-scope");
  const own = `client:${a.clientId}`;
  const send = (scope: string, name: string) => ({
    topic: topics.input,
    key: a.clientId,
    value: alertMatched({ clientId: a.clientId, alertId: "shared-id", scope, name, ruleIds: [a.ruleId] }),
  });
  // A forged copy from a shared scope arrives first, then the real one from the client's own scope (twice).
  await producer.send([send("shared:somebody-else", "forged"), send(own, "real"), send(own, "real")]);
  expect(await ready.until((records) => records.length >= 2, 20_000)).toBe(true);
  await Bun.sleep(500); // anything extra would show up now
  const rows = await sql<{ scope: string; name: string }[]>`
    SELECT scope, name FROM notifications WHERE client_id = ${a.clientId} ORDER BY scope`;
  expect([...rows]).toEqual([
    { scope: own, name: "real" },
    { scope: "shared:somebody-else", name: "forged" },
  ]);
  // The second real copy re-announced the RECEIVED row rather than inserting another.
  expect(ready.records.length).toBeGreaterThanOrEqual(2);
  expect(new Set(readyIds(ready.records)).size).toBe(2);
}, 30_000);

test("rows that already exist are announced while not terminal (crash between insert and produce)", async () => {
  const { topics, ready } = await setUp("agg-existing");
  const { clientId, ruleId } = await newClient("agg-existing");
  const preInsert = async (alertId: string, status: string) => {
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO notifications (client_id, alert_id, severity, source, name, rule_ids, event_time, status,
                                 next_attempt_at)
      VALUES (${clientId}, ${alertId}, 'LOW', 'earlier', 'earlier-name', ${[ruleId]}::uuid[], now(), ${status},
              CASE WHEN ${status} IN ('RECEIVED', 'RETRY') THEN now() + interval '1 hour' END)
      RETURNING id::text`;
    return (row as { id: string }).id;
  };
  const ids = {
    crashed: await preInsert("crashed", "RECEIVED"),
    retrying: await preInsert("retrying", "RETRY"),
    sent: await preInsert("sent", "SENT"),
    failed: await preInsert("failed", "FAILED"),
  };
  const record = (alertId: string) => ({
    topic: topics.input,
    key: clientId,
    value: alertMatched({ clientId, alertId, ruleIds: [ruleId] }),
  });
  // One key, one partition: the terminal ones are processed before the rest.
  await producer.send([
    record("sent"),
    record("failed"),
    record("crashed"),
    record("retrying"),
    record("fresh"),
  ]);
  expect(await ready.until((records) => records.length >= 3, 20_000)).toBe(true);
  await Bun.sleep(500);

  const rows = await rowsOf(clientId);
  expect(rows.map((r) => r.alert_id).sort()).toEqual(["crashed", "failed", "fresh", "retrying", "sent"]);
  const fresh = rows.find((r) => r.alert_id === "fresh") as Row;
  const announced = countDeliveries([ids.crashed, ids.retrying, fresh.id], readyIds(ready.records));
  expect(announced.lost).toEqual([]);
  expect(announced.duplicated).toEqual([]);
  // SENT and FAILED rows are never announced again.
  expect(announced.unexpected).toEqual([]);
  // The existing row is left as it was: the record does not overwrite it.
  expect(rows.find((r) => r.alert_id === "crashed")).toMatchObject({
    id: ids.crashed,
    severity: "LOW",
    name: "earlier-name",
    status: "RECEIVED",
  });
  expect(rows.find((r) => r.alert_id === "sent")?.status).toBe("SENT");
}, 30_000);

test("invalid records go to the dead-letter topic with their reason; valid ones still flow", async () => {
  const { topics, ready } = await setUp("agg-dlq");
  const { clientId, ruleId } = await newClient("agg-dlq");
  const dlq = new TopicReader(deadLetterTopic(topics.input));
  readers.push(dlq);
  const invalid: Record<string, { value: Uint8Array; field: string; reason: RegExp }> = {
    "bad-client": {
      value: alertMatched({ clientId: "not-a-uuid", alertId: "x1", ruleIds: [ruleId] }),
      field: "client_id",
      reason: /^client_id: missing or not a UUID$/,
    },
    "empty-rules": {
      value: alertMatched({ clientId, alertId: "x2", ruleIds: [] }),
      field: "rule_ids",
      reason: /^rule_ids: empty$/,
    },
    garbage: {
      value: new Uint8Array([0xff, 0xff, 0xff]),
      field: "value",
      reason: /^value: not an AlertMatched protobuf/,
    },
    "bad-severity": {
      value: alertMatched({ clientId, alertId: "x4", ruleIds: [ruleId], severity: 9 as Severity }),
      field: "severity",
      reason: /^severity: unknown value 9$/,
    },
    "bad-scope": {
      value: alertMatched({ clientId, alertId: "x5", ruleIds: [ruleId], scope: "shared:\u0000" }),
      field: "scope",
      reason: /^scope: not client:<uuid>, shared:<name> or empty$/,
    },
  };
  await producer.send([
    ...Object.entries(invalid).map(([key, { value }]) => ({ topic: topics.input, key, value })),
    {
      topic: topics.input,
      key: "valid",
      value: alertMatched({ clientId, alertId: "ok", ruleIds: [ruleId] }),
    },
  ]);

  const count = Object.keys(invalid).length;
  expect(await dlq.until((records) => records.length >= count, 20_000)).toBe(true);
  expect(await ready.until((records) => records.length >= 1, 20_000)).toBe(true);
  await Bun.sleep(500);
  expect(dlq.records).toHaveLength(count);
  for (const record of dlq.records) {
    const key = text(record.key);
    const expected = invalid[key];
    if (!expected) throw new Error(`unexpected dead letter ${key}`);
    expect(text(record.headers.get(deadLetterHeaders.reason))).toMatch(expected.reason);
    expect(text(record.headers.get(deadLetterHeaders.field))).toBe(expected.field);
    expect(text(record.headers.get(deadLetterHeaders.stage))).toBe("aggregator");
    expect(text(record.headers.get(deadLetterHeaders.topic))).toBe(topics.input);
    expect(record.value).toEqual(expected.value);
  }
  const rows = await rowsOf(clientId);
  expect(rows.map((r) => r.alert_id)).toEqual(["ok"]);
  expect(readyIds(ready.records)).toEqual([(rows[0] as Row).id]);
}, 30_000);
