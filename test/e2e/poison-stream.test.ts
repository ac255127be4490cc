/**
 * Poison mixed into a valid stream, through the whole pipeline (every stage its own process, real
 * broker, Postgres and Redis). Through ingest, each bad alert (NUL, a lone surrogate, an oversized or
 * odd-typed field) is a 400 naming its field; straight onto alerts.new, each bad record (NUL, invalid
 * UTF-8, over RECORD_BYTES_MAX, not protobuf) is dead-lettered with its reason. Every valid alert,
 * whichever way it came, is delivered to the tenant's webhook exactly once, and no stage exits.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TopicReader } from "../../harness/kafka.ts";
import { type IngestCredential, type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { deadLetterHeaders } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";

const db = useTestSchema("e2e_poison");
let pipeline: Pipeline;
let clientId = "";
let credential: IngestCredential;
let deadLetters: TopicReader;

beforeAll(async () => {
  pipeline = await startPipeline({ ingest: true, postgresUrl: db.url });
  deadLetters = new TopicReader(deadLetterTopic(pipeline.topics.alertsNew));
  clientId = (await pipeline.createClientWithRule("*", { severity: "*" })).clientId;
  credential = await pipeline.issueIngestCredential({ client_id: clientId });
  // Until the evaluator matches with the rule: a probe alert reaches the sink.
  const probe = `${pipeline.run}-probe`;
  await pipeline.producer.send([{ topic: pipeline.topics.alertsNew, value: pipeline.alert(probe, "probe") }]);
  const probeDelivered = async () => {
    if (deliveredIds().has(probe)) return true;
    await pipeline.producer.send([
      { topic: pipeline.topics.alertsNew, value: pipeline.alert(`${probe}-${Date.now()}`, "probe") },
    ]);
    return false;
  };
  expect(await eventually(probeDelivered, 30_000, 500)).toBe(true);
}, 90_000);

afterAll(async () => {
  await deadLetters.close();
  const exitCodes = await pipeline.stop();
  expect(exitCodes.every((code) => code === 0)).toBe(true);
});

function deliveredAlertIds(): string[] {
  return pipeline.sink.received
    .filter((r) => r.path === `/hook/${clientId}`)
    .map((r) => (JSON.parse(r.body) as { alertId: string }).alertId);
}

const deliveredIds = () => new Set(deliveredAlertIds());

async function ingest(alert: Record<string, unknown>) {
  const response = await fetch(`${pipeline.ingestUrl()}/api/v1/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${credential.secret}` },
    body: JSON.stringify(alert),
  });
  return { status: response.status, body: (await response.json()) as { error?: { fields?: object } } };
}

/** An AlertNew whose name's bytes are replaced by `nameBytes` (same length as the placeholder). */
function withNameBytes(alertId: string, nameBytes: number[]): Uint8Array {
  const placeholder = "~".repeat(nameBytes.length);
  const bytes = pipeline.alert(alertId, placeholder);
  const at = Buffer.from(bytes).indexOf(placeholder);
  expect(at).toBeGreaterThan(0);
  bytes.set(nameBytes, at);
  return bytes;
}

test("bad alerts are refused at ingest or dead-lettered; every valid one is delivered once", async () => {
  const id = (name: string) => `${pipeline.run}-${name}`;
  const valid = (name: string) => ({ severity: "HIGH", source: pipeline.source, name, alert_id: id(name) });
  const validIds: string[] = [];

  // Through ingest: valid alerts with a poisoned one after each.
  const refusedAtIngest: [alert: Record<string, unknown>, field: string][] = [
    [{ ...valid("nul-name"), name: "disk\u0000full" }, "name"],
    [{ ...valid("surrogate-context"), context: { note: "half \ud83d pair" } }, "context.note"],
    [{ ...valid("nul-id"), alert_id: "a\u0000b" }, "alert_id"],
    [{ ...valid("long-name"), name: "n".repeat(100_000) }, "name"],
    [{ ...valid("number-context"), context: { load: 0.9 } }, "context.load"],
    [{ ...valid("bad-severity"), severity: 5 }, "severity"],
  ];
  for (const [i, [alert, field]] of refusedAtIngest.entries()) {
    const ok = await ingest(valid(`ingest-${i}`));
    expect(ok.status).toBe(200);
    validIds.push(id(`ingest-${i}`));
    const refused = await ingest(alert);
    expect({ status: refused.status, fields: Object.keys(refused.body.error?.fields ?? {}) }).toEqual({
      status: 400,
      fields: [field],
    });
  }

  // Straight onto alerts.new: valid records with poison between them.
  const badRecords: [key: string, value: Uint8Array][] = [
    ["nul", pipeline.alert(id("kafka-nul"), "disk\u0000full")],
    ["invalid-utf8", withNameBytes(id("kafka-utf8"), [0xed, 0xa0, 0x80])],
    ["oversized", pipeline.alert(id("kafka-huge"), "h".repeat(600 * 1024))],
    ["not-protobuf", new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])],
  ];
  for (const [i, [key, value]] of badRecords.entries()) {
    validIds.push(id(`kafka-${i}`));
    await pipeline.producer.send([
      { topic: pipeline.topics.alertsNew, value: pipeline.alert(id(`kafka-${i}`), `kafka-${i}`) },
      { topic: pipeline.topics.alertsNew, key: new TextEncoder().encode(key), value },
    ]);
  }

  expect(await deadLetters.until((records) => records.length >= badRecords.length, 30_000)).toBe(true);
  const header = (record: (typeof deadLetters.records)[number], name: string) =>
    new TextDecoder().decode(record.headers.get(name));
  const reasons = Object.fromEntries(
    deadLetters.records.map((r) => [
      new TextDecoder().decode(r.key ?? undefined),
      header(r, deadLetterHeaders.reason),
    ]),
  );
  expect(Object.keys(reasons).sort()).toEqual(badRecords.map(([key]) => key).sort());
  for (const reason of Object.values(reasons)) expect(reason.length).toBeGreaterThan(0);

  // Every valid alert delivered exactly once; nothing of the bad ones anywhere.
  const allDelivered = async () => validIds.every((alertId) => deliveredIds().has(alertId));
  expect(await eventually(allDelivered, 60_000, 200)).toBe(true);
  const delivered = deliveredAlertIds().filter((alertId) => !alertId.includes("-probe"));
  expect(delivered.sort()).toEqual([...validIds].sort());
  const rows = await pipeline.sql<{ alert_id: string }[]>`
    SELECT alert_id FROM notifications WHERE client_id = ${clientId} AND alert_id NOT LIKE '%-probe%'`;
  expect(rows.map((r) => r.alert_id).sort()).toEqual([...validIds].sort());
  // No stage exited.
  for (const stage of pipeline.stages)
    expect({ stage: stage.name, exitCode: stage.process.exitCode }).toEqual({
      stage: stage.name,
      exitCode: null,
    });
}, 120_000);
