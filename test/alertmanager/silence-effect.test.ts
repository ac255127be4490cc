/**
 * A silence in force, through the whole pipeline (every stage its own process, real broker, Postgres and
 * Redis): a silence made with amtool against ingest keeps its client from being notified of a matching
 * alert sent one second later; the suppression is a SILENCED row naming the silence, visible in the API
 * and counted by the evaluator; another client matching the same alert is notified as before; expiring
 * the silence lets the next alert through and resurrects nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type IngestCredential, type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { AlertNewSchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { amtool } from "./helpers.ts";

const db = useTestSchema("silence_effect");
let pipeline: Pipeline;
let clientA = "";
let clientB = "";
let credentialA: IngestCredential;
const alertName = "DiskFull";
/** How soon a silence must take effect after the API answered. */
const effectMs = 1000;

beforeAll(async () => {
  pipeline = await startPipeline({ ingest: true, postgresUrl: db.url });
  clientA = (await pipeline.createClientWithRule(alertName)).clientId;
  clientB = (await pipeline.createClientWithRule(alertName)).clientId;
  credentialA = await pipeline.issueIngestCredential({ client_id: clientA });
  expect(await pipeline.awaitRulesApplied()).toBe(true);
}, 90_000);

afterAll(async () => {
  const exitCodes = await pipeline.stop();
  expect(exitCodes.every((code) => code === 0)).toBe(true);
});

const alertId = (name: string) => `${pipeline.run}-${name}`;

/**
 * An alert on the pipeline's source (context host db-1 unless given), straight to alerts.new with scope
 * '', so it matches both clients' rules.
 */
async function fire(id: string, host?: string): Promise<void> {
  const alert = fromBinary(AlertNewSchema, pipeline.alert(id, alertName));
  if (host !== undefined) alert.context = { ...alert.context, host };
  await pipeline.producer.send([
    {
      topic: pipeline.topics.alertsNew,
      key: new TextEncoder().encode(id),
      value: toBinary(AlertNewSchema, alert),
    },
  ]);
}

interface Row {
  client_id: string;
  status: string;
  silenced_by: string | null;
}

const rowsOf = (id: string) =>
  pipeline.sql<Row[]>`
    SELECT client_id::text, status, silenced_by::text FROM notifications
    WHERE alert_id = ${id} AND client_id IN (${clientA}, ${clientB}) ORDER BY client_id = ${clientB}`;

const hooksFor = (clientId: string, id: string) =>
  pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}` && r.body.includes(id));

async function silencedCount(): Promise<number> {
  const metrics = await (await fetch(`${pipeline.httpUrl("evaluator")}/metrics`)).text();
  return Number(/^alerts_silenced_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 0);
}

async function amtoolOk(args: string[]): Promise<string> {
  const result = await amtool(pipeline.ingestUrl(), credentialA.secret, args);
  expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
  return result.stdout.trim();
}

let silenceId = "";

test("within a second of amtool silence add, A's notification is SILENCED; B is notified", async () => {
  const countedBefore = await silencedCount();
  silenceId = await amtoolOk([
    "silence",
    "add",
    `alertname=${alertName}`,
    `source=${pipeline.source}`,
    "host=~db-.*",
    "--comment=maintenance",
    "--duration=1h",
  ]);
  await Bun.sleep(effectMs);
  const silenced = alertId("silenced");
  await fire(silenced);

  expect(await eventually(async () => (await rowsOf(silenced)).length === 2, 20_000, 100)).toBe(true);
  expect(await eventually(() => hooksFor(clientB, silenced).length === 1, 20_000, 100)).toBe(true);
  await Bun.sleep(500); // anything for A would have arrived with B's
  expect([...(await rowsOf(silenced))]).toEqual([
    { client_id: clientA, status: "SILENCED", silenced_by: silenceId },
    { client_id: clientB, status: "SENT", silenced_by: null },
  ]);
  expect(hooksFor(clientA, silenced)).toEqual([]);
  expect(await silencedCount()).toBe(countedBefore + 1);

  // The record is visible to the tenant in the rule service's API.
  const listed = await pipeline.api("GET", `/api/v1/notifications?client_id=${clientA}&status=SILENCED`);
  const items = (listed.body as { items: { alert_id: string; silenced_by: string }[] }).items;
  expect(items.filter((n) => n.alert_id === silenced)).toEqual([
    expect.objectContaining({ alert_id: silenced, silenced_by: silenceId }),
  ]);
}, 60_000);

test("an alert the matchers do not match is not silenced", async () => {
  // Same alertname and source, but the silence also asks host=~db-.*: a web host is not silenced.
  const other = alertId("other-host");
  await fire(other, "web-1");
  expect(await eventually(() => hooksFor(clientA, other).length === 1, 20_000, 100)).toBe(true);
  expect((await rowsOf(other)).map((row) => row.status)).toEqual(["SENT", "SENT"]);
}, 60_000);

test("an Alertmanager alert through ingest: its firing and its resolution are SILENCED", async () => {
  const labels = [`alertname=${alertName}`, "severity=high", `instance=${pipeline.source}`, "host=db-9"];
  const run = `run=${pipeline.run}`;
  await amtoolOk(["alert", "add", ...labels, run]);
  const rows = () =>
    pipeline.sql<{ client_id: string; kind: string; status: string; silenced_by: string | null }[]>`
      SELECT client_id::text, kind, status, silenced_by::text FROM notifications
      WHERE client_id = ${clientA} AND context->>'run' = ${pipeline.run} ORDER BY id`;
  expect(await eventually(async () => (await rows()).length === 1, 20_000, 100)).toBe(true);
  await amtoolOk(["alert", "add", ...labels, run, `--end=${new Date(Date.now() - 1000).toISOString()}`]);
  expect(await eventually(async () => (await rows()).length === 2, 20_000, 100)).toBe(true);
  await Bun.sleep(500); // a delivery for A would have started by now
  expect([...(await rows())]).toEqual([
    { client_id: clientA, kind: "firing", status: "SILENCED", silenced_by: silenceId },
    { client_id: clientA, kind: "resolved", status: "SILENCED", silenced_by: silenceId },
  ]);
  expect(
    pipeline.sink.received.filter((r) => r.path === `/hook/${clientA}` && r.body.includes("db-9")),
  ).toEqual([]);
}, 60_000);

test("after amtool silence expire the next alert notifies A, and the silenced one stays silenced", async () => {
  await amtoolOk(["silence", "expire", silenceId]);
  await Bun.sleep(effectMs);
  const after = alertId("after-expiry");
  await fire(after);
  expect(await eventually(() => hooksFor(clientA, after).length === 1, 20_000, 100)).toBe(true);
  expect((await rowsOf(after)).map((row) => row.status)).toEqual(["SENT", "SENT"]);

  const silenced = alertId("silenced");
  await fire(silenced); // a redelivery of the silenced alert: the row is the record, nothing resurrects
  await Bun.sleep(1500);
  expect((await rowsOf(silenced)).map((row) => row.status)).toEqual(["SILENCED", "SENT"]);
  expect(hooksFor(clientA, silenced)).toEqual([]);
}, 60_000);
