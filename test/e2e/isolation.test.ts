/**
 * Tenant isolation over ingest, through the whole pipeline (every stage its own process, real broker,
 * Postgres and Redis): clients A, B and C each have a wildcard rule on the same source, the rule any
 * tenant could write for another's source. Credentials: A's private scope, B's, and a shared scope
 * granted to A and C. For every credential, who is notified is counted per client row by row; a
 * secret in B's alert reaches nobody else; a forged copy of an alert id sent first from other scopes
 * suppresses nothing; without a valid credential nothing is produced at all.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TopicReader } from "../../harness/kafka.ts";
import { type IngestCredential, type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { connectRedis } from "../../src/adapters/redis.ts";
import { readSnapshotBytes, snapshotKeys } from "../../src/adapters/snapshot-store.ts";
import { decodeSnapshot, snapshotGrants, snapshotRules } from "../../src/core/snapshot.ts";

const db = useTestSchema("e2e_isolation");
let pipeline: Pipeline;
let topic: TopicReader;
const tenants = { A: "", B: "", C: "" };
type Tenant = keyof typeof tenants;
let credentials: Record<"A" | "B" | "shared", IngestCredential>;
let sharedScope = "";

beforeAll(async () => {
  pipeline = await startPipeline({ ingest: true, postgresUrl: db.url });
  topic = new TopicReader(pipeline.topics.alertsNew);
  for (const tenant of Object.keys(tenants) as Tenant[]) {
    // (*, source, *): every alert of the source, whoever sent it, were it not for scopes.
    tenants[tenant] = (await pipeline.createClientWithRule("*", { severity: "*" })).clientId;
  }
  const shared = await pipeline.createSharedScope(`${pipeline.run.slice(0, 40)}-shared`, [
    tenants.A,
    tenants.C,
  ]);
  sharedScope = shared.scope;
  credentials = {
    A: await pipeline.issueIngestCredential({ client_id: tenants.A }),
    B: await pipeline.issueIngestCredential({ client_id: tenants.B }),
    shared: await pipeline.issueIngestCredential({ scope_id: shared.id }),
  };
  // Until the evaluator matches with all three rules and both grants.
  const redis = connectRedis();
  try {
    const keys = snapshotKeys(`${pipeline.run}:rules:`);
    const clients = new Set(Object.values(tenants));
    let version = -1n;
    const complete = await eventually(
      async () => {
        const bytes = await readSnapshotBytes(redis, keys);
        if (!bytes) return false;
        const snapshot = decodeSnapshot(bytes);
        const rules = snapshotRules(snapshot).filter((rule) => clients.has(rule.clientId));
        const grants = snapshotGrants(snapshot).filter((grant) => clients.has(grant.clientId));
        version = snapshot.version;
        return rules.length === 3 && grants.length === 2;
      },
      15_000,
      50,
    );
    expect(complete).toBe(true);
    expect(
      await eventually(async () => (await pipeline.rulesVersionApplied()) >= Number(version), 15_000),
    ).toBe(true);
  } finally {
    redis.disconnect();
  }
}, 90_000);

afterAll(async () => {
  await topic.close();
  const exitCodes = await pipeline.stop();
  expect(exitCodes.every((code) => code === 0)).toBe(true);
});

const id = (name: string) => `${pipeline.run}-${name}`;

interface V1Alert {
  alert_id: string;
  name: string;
  context?: Record<string, string>;
}

/** POST /api/v1/alerts as `authorization` (undefined: no header). */
async function ingest(authorization: string | undefined, alerts: V1Alert[]) {
  const response = await fetch(`${pipeline.ingestUrl()}/api/v1/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(alerts.map((alert) => ({ severity: "HIGH", source: pipeline.source, ...alert }))),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const bearer = (credential: IngestCredential) => `Bearer ${credential.secret}`;

interface Row {
  client_id: string;
  scope: string;
  alert_id: string;
  name: string;
  context: Record<string, string>;
  status: string;
}

const rows = () =>
  pipeline.sql<Row[]>`
    SELECT client_id::text, scope, alert_id, name, context, status FROM notifications
    WHERE client_id IN ${pipeline.sql(Object.values(tenants))}`;

/** "<tenant> <scope> <alert id> <name>" per row, sorted: who was notified of what, under which scope. */
const who = (list: readonly Pick<Row, "client_id" | "scope" | "alert_id" | "name">[]) => {
  const tenantOf = new Map(Object.entries(tenants).map(([tenant, clientId]) => [clientId, tenant]));
  return list.map((r) => `${tenantOf.get(r.client_id)} ${r.scope} ${r.alert_id} ${r.name}`).sort();
};

test("every credential x tenant: only the tenants granted the credential's scope are notified", async () => {
  const perCredential = 4;
  const senders: [label: string, credential: IngestCredential, reaches: Tenant[]][] = [
    ["a", credentials.A, ["A"]],
    ["b", credentials.B, ["B"]],
    ["shared", credentials.shared, ["A", "C"]],
  ];
  const expected: Omit<Row, "context" | "status">[] = [];
  for (const [label, credential, reaches] of senders) {
    const alerts = Array.from({ length: perCredential }, (_, i) => ({
      alert_id: id(`${label}-${i}`),
      name: label,
    }));
    const reply = await ingest(bearer(credential), alerts);
    expect({ label, status: reply.status }).toEqual({ label, status: 200 });
    for (const alert of alerts) {
      for (const tenant of reaches) {
        expected.push({
          client_id: tenants[tenant],
          scope: credential.scope,
          alert_id: alert.alert_id,
          name: label,
        });
      }
    }
  }
  // B's secret, as in the report: a wildcard rule of A's must never see it.
  const leak = await ingest(bearer(credentials.B), [
    { alert_id: id("leak"), name: "db_password", context: { db_password: "hunter2" } },
  ]);
  expect(leak.status).toBe(200);
  expected.push({
    client_id: tenants.B,
    scope: credentials.B.scope,
    alert_id: id("leak"),
    name: "db_password",
  });
  // Alertmanager's API with basic auth (Prometheus's alertmanagers config), as B.
  const basic = Buffer.from(`prometheus:${credentials.B.secret}`).toString("base64");
  const v2 = await fetch(`${pipeline.ingestUrl()}/api/v2/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${basic}` },
    body: JSON.stringify([{ labels: { alertname: "am", severity: "critical", instance: pipeline.source } }]),
  });
  expect(v2.status).toBe(200);
  const [amId] = ((await v2.json()) as { alert_ids: string[] }).alert_ids;
  expected.push({ client_id: tenants.B, scope: credentials.B.scope, alert_id: amId as string, name: "am" });
  // An internal producer writing straight to Kafka (no scope) reaches every tenant, as before scopes.
  await pipeline.producer.send([
    {
      topic: pipeline.topics.alertsNew,
      key: id("internal"),
      value: pipeline.alert(id("internal"), "internal"),
    },
  ]);
  for (const tenant of Object.keys(tenants) as Tenant[]) {
    expected.push({ client_id: tenants[tenant], scope: "", alert_id: id("internal"), name: "internal" });
  }

  const ours = async () => (await rows()).filter((r) => expected.some((e) => e.alert_id === r.alert_id));
  expect(
    await eventually(
      async () => {
        const seen = await ours();
        return seen.length >= expected.length && seen.every((r) => r.status === "SENT");
      },
      30_000,
      200,
    ),
  ).toBe(true);
  await Bun.sleep(500); // a wrong extra row would show up now
  const seen = await ours();
  expect(who(seen)).toEqual(who(expected));
  const counts = Object.fromEntries(
    (Object.keys(tenants) as Tenant[]).map((t) => [t, seen.filter((r) => r.client_id === tenants[t]).length]),
  );
  expect(counts).toEqual({ A: 2 * perCredential + 1, B: perCredential + 3, C: perCredential + 1 });
  console.log(`rows per tenant: ${JSON.stringify(counts)}`);

  // The secret went to B's webhook and nowhere else; the notifications API shows the scope.
  const deliveredTo = (tenant: Tenant) =>
    pipeline.sink.received.filter((r) => r.path === `/hook/${tenants[tenant]}`);
  expect(deliveredTo("B").filter((r) => r.body.includes("hunter2"))).toHaveLength(1);
  for (const tenant of ["A", "C"] as const) {
    expect(
      deliveredTo(tenant).filter((r) => r.body.includes("hunter2") || r.body.includes(id("leak"))),
    ).toEqual([]);
  }
  const listed = await pipeline.api("GET", `/api/v1/notifications?client_id=${tenants.C}&limit=100`);
  const scopes = new Set((listed.body.items as { scope: string }[]).map((n) => n.scope));
  expect(scopes).toEqual(new Set([sharedScope, ""]));
}, 60_000);

test("a forged copy of an alert id sent first from other scopes does not suppress the real one", async () => {
  const dup = id("dup");
  // Forged copies first, each under the scope its sender's credential carries, and one internal copy.
  expect((await ingest(bearer(credentials.A), [{ alert_id: dup, name: "forged-by-a" }])).status).toBe(200);
  expect((await ingest(bearer(credentials.shared), [{ alert_id: dup, name: "forged-shared" }])).status).toBe(
    200,
  );
  await pipeline.producer.send([
    { topic: pipeline.topics.alertsNew, key: dup, value: pipeline.alert(dup, "internal-copy") },
  ]);
  const dupRows = async () => (await rows()).filter((r) => r.alert_id === dup);
  // Every forged copy is in its rows before the real one is sent: the forger got there first.
  expect(await eventually(async () => (await dupRows()).length === 6, 20_000, 100)).toBe(true);
  expect((await ingest(bearer(credentials.B), [{ alert_id: dup, name: "real" }])).status).toBe(200);
  expect(
    await eventually(
      async () => {
        const all = await dupRows();
        return all.length === 7 && all.every((r) => r.status === "SENT");
      },
      20_000,
      100,
    ),
  ).toBe(true);
  await Bun.sleep(300);
  expect(who(await dupRows())).toEqual(
    who([
      { client_id: tenants.A, scope: credentials.A.scope, alert_id: dup, name: "forged-by-a" },
      { client_id: tenants.A, scope: sharedScope, alert_id: dup, name: "forged-shared" },
      { client_id: tenants.C, scope: sharedScope, alert_id: dup, name: "forged-shared" },
      { client_id: tenants.A, scope: "", alert_id: dup, name: "internal-copy" },
      { client_id: tenants.B, scope: "", alert_id: dup, name: "internal-copy" },
      { client_id: tenants.C, scope: "", alert_id: dup, name: "internal-copy" },
      { client_id: tenants.B, scope: credentials.B.scope, alert_id: dup, name: "real" },
    ]),
  );
  const toB = pipeline.sink.received
    .filter((r) => r.path === `/hook/${tenants.B}`)
    .map((r) => JSON.parse(r.body) as { alertId: string; name: string })
    .filter((payload) => payload.alertId === dup);
  expect(toB.map((payload) => payload.name).sort()).toEqual(["internal-copy", "real"]);
}, 60_000);

test("no credential, an unknown one, a revoked one: 401, and nothing reaches Kafka", async () => {
  const revoked = await pipeline.issueIngestCredential({ client_id: tenants.B });
  expect((await ingest(bearer(revoked), [{ alert_id: id("before-revoke"), name: "ok" }])).status).toBe(200);
  expect((await pipeline.api("DELETE", `/api/v1/ingest-credentials/${revoked.id}`)).status).toBe(204);
  const refused: [string, string | undefined][] = [
    ["none", undefined],
    ["unknown", `Bearer ik_${"x".repeat(43)}`],
    ["revoked", bearer(revoked)],
    ["api-key", `Bearer ${pipeline.adminToken}`],
  ];
  for (const [label, authorization] of refused) {
    const reply = await ingest(authorization, [{ alert_id: id(`refused-${label}`), name: "refused" }]);
    expect({ label, status: reply.status, code: (reply.body.error as { code: string }).code }).toEqual({
      label,
      status: 401,
      code: "unauthorized",
    });
  }
  // A marker sent after them: once it is on the topic, anything they had produced would be too.
  expect((await ingest(bearer(credentials.A), [{ alert_id: id("marker"), name: "marker" }])).status).toBe(
    200,
  );
  const keys = () => topic.records.map((r) => new TextDecoder().decode(r.key ?? new Uint8Array()));
  expect(await topic.until(() => keys().includes(id("marker")), 15_000)).toBe(true);
  expect(keys().filter((key) => key.includes("-refused-"))).toEqual([]);
  expect(keys()).toContain(id("before-revoke"));
  expect((await rows()).filter((r) => r.alert_id.includes("-refused-"))).toEqual([]);
}, 60_000);
