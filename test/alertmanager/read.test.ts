/** The read side over HTTP: probes, status, receivers, alerts and alert groups, per client. */
import { beforeAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import {
  bearer,
  insertNotification,
  insertRuleWithEndpoint,
  type TestClient,
  useServerWithTwoClients,
} from "./helpers.ts";

const db = useTestSchema("am_read");
const { sql } = db;
const { server, clientA, clientB } = useServerWithTwoClients(db);
let receiverA: string;
const alertName = `ReadSide${Date.now()}`;

beforeAll(async () => {
  const { ruleId, endpointId } = await insertRuleWithEndpoint(sql, clientA.id);
  receiverA = `webhook/${endpointId}`;
  await insertNotification(sql, clientA.id, {
    alertId: "am-00000000000000aa",
    severity: "HIGH",
    source: "db-1",
    name: alertName,
    context: { env: "prod", "annotation.summary": "slow", generatorURL: "http://prometheus/graph" },
    ruleIds: [ruleId],
  });
  await insertNotification(sql, clientA.id, {
    alertId: "ended",
    severity: "LOW",
    source: "db-1",
    name: `${alertName}Ended`,
    context: { endsAt: "2020-01-01T00:00:00Z" },
    ruleIds: [ruleId],
  });
  // Lifecycle: one still firing although notified two hours ago (re-sends make no rows), one resolved.
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  await insertNotification(sql, clientA.id, {
    alertId: "am-00000000000000bb",
    severity: "LOW",
    source: "db-2",
    name: `${alertName}Firing`,
    context: {},
    ruleIds: [ruleId],
    createdAt: twoHoursAgo,
    state: "firing",
  });
  await insertNotification(sql, clientA.id, {
    alertId: "am-00000000000000cc",
    severity: "LOW",
    source: "db-3",
    name: `${alertName}Resolved`,
    context: {},
    ruleIds: [ruleId],
    state: "resolved",
  });
});

async function getJson(path: string, client: TestClient): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}${path}`, { headers: bearer(client.secret) });
  return { status: response.status, body: await response.json() };
}

describe("probes and status", () => {
  test("/-/healthy and /-/ready answer OK without a credential", async () => {
    for (const path of ["/-/healthy", "/-/ready"]) {
      const response = await fetch(`${server.url}${path}`);
      expect([response.status, await response.text()]).toEqual([200, "OK"]);
    }
  });

  test("/api/v2/status: Alertmanager's shape", async () => {
    const { status, body } = await getJson("/api/v2/status", clientA);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      cluster: { status: "ready", peers: [] },
      versionInfo: { version: "0.25.0" },
      config: { original: expect.stringContaining(receiverA) },
    });
    expect(Date.parse((body as { uptime: string }).uptime)).toBeLessThanOrEqual(Date.now());
  });

  test("a method the route does not have: 405 with a string body", async () => {
    const response = await fetch(`${server.url}/api/v2/status`, {
      method: "PUT",
      headers: bearer(clientA.secret),
    });
    expect(response.status).toBe(405);
    expect(typeof (await response.json())).toBe("string");
  });
});

describe("receivers, alerts and groups: each client sees its own", () => {
  test("receivers are the client's enabled endpoints", async () => {
    expect((await getJson("/api/v2/receivers", clientA)).body).toEqual([{ name: receiverA }]);
    expect((await getJson("/api/v2/receivers", clientB)).body).toEqual([]);
  });

  test("alerts: Alertmanager's gettable alerts; ended and resolved ones are gone", async () => {
    const { status, body } = await getJson("/api/v2/alerts", clientA);
    expect(status).toBe(200);
    expect(body).toEqual([
      {
        labels: { alertname: alertName, severity: "high", source: "db-1", env: "prod" },
        annotations: { summary: "slow" },
        startsAt: expect.any(String),
        endsAt: expect.any(String),
        updatedAt: expect.any(String),
        fingerprint: "00000000000000aa",
        receivers: [{ name: receiverA }],
        status: { state: "active", silencedBy: [], inhibitedBy: [] },
        generatorURL: "http://prometheus/graph",
      },
      expect.objectContaining({
        labels: { alertname: `${alertName}Firing`, severity: "low", source: "db-2" },
        fingerprint: "00000000000000bb",
        status: { state: "active", silencedBy: [], inhibitedBy: [] },
      }),
    ]);
    expect((await getJson("/api/v2/alerts", clientB)).body).toEqual([]);
  });

  test("filter, receiver and the state flags", async () => {
    const names = async (query: string) =>
      ((await getJson(`/api/v2/alerts?${query}`, clientA)).body as { labels: { alertname: string } }[]).map(
        (alert) => alert.labels.alertname,
      );
    expect(await names("filter=env%3Dprod")).toEqual([alertName]);
    expect(await names("filter=env%3Dstaging")).toEqual([]);
    expect(await names(`receiver=${encodeURIComponent("webhook/.*")}`)).toEqual([
      alertName,
      `${alertName}Firing`,
    ]);
    expect(await names("receiver=slack.*")).toEqual([]);
    expect(await names("active=false")).toEqual([]);
    const bad = await getJson("/api/v2/alerts?active=maybe", clientA);
    expect(bad).toEqual({ status: 400, body: "active: expected true or false" });
    const badReceiver = await getJson("/api/v2/alerts?receiver=(", clientA);
    expect(badReceiver.status).toBe(400);
    expect(typeof badReceiver.body).toBe("string");
  });

  test("groups: one per receiver, holding its alerts", async () => {
    const { body } = await getJson("/api/v2/alerts/groups", clientA);
    expect(body).toEqual([
      {
        labels: {},
        receiver: { name: receiverA },
        alerts: [
          expect.objectContaining({ fingerprint: "00000000000000aa" }),
          expect.objectContaining({ fingerprint: "00000000000000bb" }),
        ],
      },
    ]);
    expect((await getJson("/api/v2/alerts/groups", clientB)).body).toEqual([]);
  });
});

describe("an alert of two routes (rules that group differently)", () => {
  test("is one alert, listing the receivers of both; the state of each route is its own", async () => {
    const second = await insertRuleWithEndpoint(sql, clientA.id);
    const alert = {
      severity: "LOW",
      source: "db-4",
      name: `${alertName}Routed`,
      context: {},
      ruleIds: [second.ruleId],
    };
    await insertNotification(sql, clientA.id, { ...alert, alertId: "am-00000000000000dd", state: "firing" });
    await insertNotification(sql, clientA.id, {
      ...alert,
      alertId: "am-00000000000000dd",
      ruleIds: [(await insertRuleWithEndpoint(sql, clientA.id)).ruleId],
      state: "firing",
      route: "0123456789abcdef0123456789abcdef",
    });
    // The same for an alert whose route "" is resolved: only the firing route's receivers.
    await insertNotification(sql, clientA.id, {
      ...alert,
      alertId: "am-00000000000000ee",
      state: "resolved",
    });
    await insertNotification(sql, clientA.id, {
      ...alert,
      alertId: "am-00000000000000ee",
      state: "firing",
      route: "0123456789abcdef0123456789abcdef",
    });
    const { body } = await getJson(
      `/api/v2/alerts?filter=${encodeURIComponent(`alertname=${alert.name}`)}`,
      clientA,
    );
    const alerts = body as { fingerprint: string; receivers: { name: string }[] }[];
    expect(alerts.map((a) => a.fingerprint)).toEqual(["00000000000000dd", "00000000000000ee"]);
    expect(alerts[0]?.receivers).toHaveLength(2);
    expect(alerts[0]?.receivers).toContainEqual({ name: `webhook/${second.endpointId}` });
    expect(alerts[1]?.receivers).toEqual([{ name: `webhook/${second.endpointId}` }]);
  });
});

describe("an alert whose newest row names fewer rules (a rule that joined while it fires)", () => {
  test("lists the receivers of every rule its latest submission named", async () => {
    const first = await insertRuleWithEndpoint(sql, clientA.id);
    const joined = await insertRuleWithEndpoint(sql, clientA.id);
    const alertId = "am-00000000000000ff";
    const alert = { severity: "LOW", source: "db-5", name: `${alertName}Joined`, context: {} };
    await insertNotification(sql, clientA.id, {
      ...alert,
      alertId,
      ruleIds: [first.ruleId],
      state: "firing",
    });
    // The aggregator's row for the joining rule, and the state as it keeps it.
    await sql`
      INSERT INTO notifications (client_id, alert_id, severity, source, name, rule_ids, event_time, episode, kind)
      VALUES (${clientA.id}, ${alertId}, 'LOW', 'db-5', ${alert.name}, ${[joined.ruleId]}::uuid[], now(), 1, 'repeat:1')`;
    await sql`
      UPDATE alert_states SET matched_rule_ids = ${[first.ruleId, joined.ruleId]}::uuid[],
        told_rule_ids = ${[first.ruleId, joined.ruleId]}::uuid[]
      WHERE client_id = ${clientA.id} AND alert_key = ${alertId}`;
    const { body } = await getJson(
      `/api/v2/alerts?filter=${encodeURIComponent(`alertname=${alert.name}`)}`,
      clientA,
    );
    const [shown] = body as { receivers: { name: string }[] }[];
    expect(shown?.receivers.map((r) => r.name).sort()).toEqual(
      [`webhook/${first.endpointId}`, `webhook/${joined.endpointId}`].sort(),
    );
  });
});
