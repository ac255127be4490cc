/**
 * A rule's delivery settings through the whole pipeline (every stage its own process): set through the
 * rules API, carried by the snapshot, merged by the evaluator into AlertMatched, and honoured by the
 * aggregator. `send_resolved: false`: the alert resolves without a resolved notification;
 * `repeat_interval_ms`: reminders at the rule's interval, not the stage default (1 h here); a mute
 * window that always holds: the firing row SILENCED with the rule, nothing sent, not even the
 * resolution; once the window is removed, a re-send of an alert that opened muted is sent once, on
 * the route of the rule without windows. A client's muted rule mutes only its own endpoints: another
 * rule of the client without windows still gets the alert, and the muted rule's endpoint nothing. A
 * rule added while an alert fires is told at the next re-send, alone, and hears of its resolution.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { AlertNewSchema, AlertStatus, Severity } from "../../src/gen/alerting/v1/alert_pb.ts";

const db = useTestSchema("e2e_rule_policy");
let pipeline: Pipeline;
const clients: Record<"skip" | "repeat" | "muted", { clientId: string; ruleId: string }> = {
  skip: { clientId: "", ruleId: "" },
  repeat: { clientId: "", ruleId: "" },
  muted: { clientId: "", ruleId: "" },
};
const settings = {
  skip: { send_resolved: false },
  repeat: { repeat_interval_ms: 1000 },
  muted: { mute_windows: ["* 00:00-24:00"] },
};

beforeAll(async () => {
  pipeline = await startPipeline({
    postgresUrl: db.url,
    stageEnv: { aggregator: { SWEEP_INTERVAL_MS: "200", REPEAT_INTERVAL_MS: "3600000" } },
  });
  for (const kind of ["skip", "repeat", "muted"] as const) {
    clients[kind] = await pipeline.createClientWithRule(`Policy-${kind}`);
    const rule = await pipeline.api("GET", `/api/v1/rules/${clients[kind].ruleId}`);
    const patched = await pipeline.api("PATCH", `/api/v1/rules/${clients[kind].ruleId}`, {
      version: rule.body.version,
      ...settings[kind],
    });
    expect(patched.status).toBe(200);
  }
  expect(await pipeline.awaitRulesApplied()).toBe(true);
}, 90_000);

afterAll(async () => {
  const exitCodes = await pipeline.stop();
  expect(exitCodes.every((code) => code === 0)).toBe(true);
});

async function submit(
  kind: keyof typeof clients,
  status: AlertStatus,
  startsAtMs: number,
  endsAtMs = 0,
  alertId = `am-${pipeline.run}-${kind}`,
) {
  const alert = create(AlertNewSchema, {
    alertId,
    severity: Severity.HIGH,
    source: pipeline.source,
    name: `Policy-${kind}`,
    eventTimeUnixMs: BigInt(startsAtMs),
    schemaVersion: 1,
    status,
    endsAtUnixMs: BigInt(endsAtMs),
  });
  await pipeline.producer.send([
    { topic: pipeline.topics.alertsNew, key: alertId, value: toBinary(AlertNewSchema, alert) },
  ]);
}

interface Row {
  kind: string;
  status: string;
  muted_by_rule: string | null;
  plain_route: boolean;
}

const rowsOf = (clientId: string) =>
  pipeline.sql<Row[]>`SELECT kind, status, muted_by_rule::text, route = '' AS plain_route FROM notifications
                      WHERE client_id = ${clientId} ORDER BY id`;
const hooksOf = (clientId: string) => pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}`);

test("send_resolved false, the rule's repeat interval, and a mute window, end to end", async () => {
  const startsAtMs = Date.now() - 60_000;
  for (const kind of ["skip", "repeat", "muted"] as const) await submit(kind, AlertStatus.FIRING, startsAtMs);
  const repeated = await eventually(
    async () => (await rowsOf(clients.repeat.clientId)).some((r) => r.kind === "repeat:2"),
    20_000,
  );
  expect(repeated).toBe(true);
  await submit("skip", AlertStatus.RESOLVED, startsAtMs, Date.now() - 1000);
  await submit("muted", AlertStatus.RESOLVED, startsAtMs, Date.now() - 1000);
  const resolvedOf = (clientId: string) =>
    eventually(async () => {
      const [state] = await pipeline.sql<{ state: string }[]>`
        SELECT state FROM alert_states WHERE client_id = ${clientId}`;
      return state?.state === "resolved";
    }, 20_000);
  expect(await resolvedOf(clients.skip.clientId)).toBe(true);
  expect(await resolvedOf(clients.muted.clientId)).toBe(true);
  await Bun.sleep(1500); // a resolved row, were one written, would be sent by now

  expect((await rowsOf(clients.skip.clientId)).map((r) => r.kind)).toEqual(["firing"]);
  expect(hooksOf(clients.skip.clientId).map((r) => JSON.parse(r.body).kind)).toEqual(["firing"]);
  const repeatKinds = (await rowsOf(clients.repeat.clientId)).map((r) => r.kind);
  expect(repeatKinds.slice(0, 3)).toEqual(["firing", "repeat:1", "repeat:2"]);
  // Never notified, so its resolution is not sent either.
  const mutedRow = {
    kind: "firing",
    status: "SILENCED",
    muted_by_rule: clients.muted.ruleId,
    plain_route: false,
  };
  expect([...(await rowsOf(clients.muted.clientId))]).toEqual([mutedRow]);
  expect(hooksOf(clients.muted.clientId)).toEqual([]);

  // Another alert opens muted; the window is removed while it fires: the rule is now on the plain
  // route, whose first submission (a re-send, same startsAt) notifies it once.
  const lateId = `am-${pipeline.run}-muted-late`;
  await submit("muted", AlertStatus.FIRING, startsAtMs, 0, lateId);
  expect(await eventually(async () => (await rowsOf(clients.muted.clientId)).length === 2, 20_000)).toBe(
    true,
  );
  const rule = await pipeline.api("GET", `/api/v1/rules/${clients.muted.ruleId}`);
  const patched = await pipeline.api("PATCH", `/api/v1/rules/${clients.muted.ruleId}`, {
    version: rule.body.version,
    mute_windows: [],
  });
  expect(patched.status).toBe(200);
  expect(await pipeline.awaitRulesApplied()).toBe(true);
  await submit("muted", AlertStatus.FIRING, startsAtMs, 0, lateId);
  expect(await eventually(async () => hooksOf(clients.muted.clientId).length === 1, 20_000)).toBe(true);
  await Bun.sleep(1000); // a second message, were one sent, would be here by now
  expect(hooksOf(clients.muted.clientId).map((r) => JSON.parse(r.body).kind)).toEqual(["firing"]);
  expect([...(await rowsOf(clients.muted.clientId))]).toEqual([
    mutedRow,
    mutedRow,
    { kind: "firing", status: "SENT", muted_by_rule: null, plain_route: true },
  ]);
}, 120_000);

test("a muted rule mutes only its own endpoints: the client's rule without windows still pages", async () => {
  const versionBefore = await pipeline.rulesVersionApplied();
  const { clientId, ruleId: plainRuleId } = await pipeline.createClientWithRule("Policy-shared");
  const muted = await pipeline.api("POST", "/api/v1/rules", {
    client_id: clientId,
    severity: "*",
    source: pipeline.source,
    name: "Policy-shared",
    mute_windows: ["* 00:00-24:00"],
  });
  expect(muted.status).toBe(201);
  const mutedRuleId = muted.body.id as string;
  const endpoint = await pipeline.api("POST", `/api/v1/rules/${mutedRuleId}/endpoints`, {
    type: "webhook",
    value: pipeline.sink.url(`/hook/${clientId}/muted`),
  });
  expect(endpoint.status).toBe(201);
  expect(
    await eventually(async () => (await pipeline.rulesVersionApplied()) > versionBefore + 1, 15_000),
  ).toBe(true);

  const alertId = `am-${pipeline.run}-shared`;
  const alert = create(AlertNewSchema, {
    alertId,
    severity: Severity.HIGH,
    source: pipeline.source,
    name: "Policy-shared",
    eventTimeUnixMs: BigInt(Date.now()),
    schemaVersion: 1,
    status: AlertStatus.FIRING,
  });
  await pipeline.producer.send([
    { topic: pipeline.topics.alertsNew, key: alertId, value: toBinary(AlertNewSchema, alert) },
  ]);
  expect(await eventually(async () => hooksOf(clientId).length === 1, 20_000)).toBe(true);
  await Bun.sleep(1500); // a message to the muted rule's endpoint, were one sent, would be here by now
  expect(pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}/muted`)).toEqual([]);
  expect(hooksOf(clientId)).toHaveLength(1);
  const rows = await pipeline.sql<{ rule_ids: string[]; status: string; muted_by_rule: string | null }[]>`
    SELECT rule_ids::text[] AS rule_ids, status, muted_by_rule::text FROM notifications
    WHERE client_id = ${clientId} ORDER BY route = '' DESC`;
  expect([...rows]).toEqual([
    { rule_ids: [plainRuleId], status: "SENT", muted_by_rule: null },
    { rule_ids: [mutedRuleId], status: "SILENCED", muted_by_rule: mutedRuleId },
  ]);
}, 60_000);

test("a rule added while an alert fires pages its endpoint at the next re-send, once; both hear the resolution", async () => {
  const { clientId } = await pipeline.createClientWithRule("Policy-joined");
  expect(await pipeline.awaitRulesApplied()).toBe(true);
  const alertId = `am-${pipeline.run}-joined`;
  const startsAtMs = Date.now() - 60_000;
  const send = (status: AlertStatus, endsAtMs = 0) =>
    pipeline.producer.send([
      {
        topic: pipeline.topics.alertsNew,
        key: alertId,
        value: toBinary(
          AlertNewSchema,
          create(AlertNewSchema, {
            alertId,
            severity: Severity.HIGH,
            source: pipeline.source,
            name: "Policy-joined",
            eventTimeUnixMs: BigInt(startsAtMs),
            schemaVersion: 1,
            status,
            endsAtUnixMs: BigInt(endsAtMs),
          }),
        ),
      },
    ]);
  const joinedHooks = () => pipeline.sink.received.filter((r) => r.path === `/hook/${clientId}/joined`);
  const kinds = (hooks: readonly { body: string }[]) => hooks.map((r) => JSON.parse(r.body).kind);
  await send(AlertStatus.FIRING);
  expect(await eventually(async () => hooksOf(clientId).length === 1, 20_000)).toBe(true);

  const joined = await pipeline.api("POST", "/api/v1/rules", {
    client_id: clientId,
    severity: "*",
    source: pipeline.source,
    name: "Policy-joined",
  });
  expect(joined.status).toBe(201);
  const endpoint = await pipeline.api("POST", `/api/v1/rules/${joined.body.id}/endpoints`, {
    type: "webhook",
    value: pipeline.sink.url(`/hook/${clientId}/joined`),
  });
  expect(endpoint.status).toBe(201);
  expect(await pipeline.awaitRulesApplied()).toBe(true);
  await send(AlertStatus.FIRING); // the source's next re-send, same startsAt
  await send(AlertStatus.FIRING); // and once more
  expect(await eventually(async () => joinedHooks().length === 1, 20_000)).toBe(true);
  await Bun.sleep(1500); // a second message to either endpoint, were one sent, would be here by now
  expect(kinds(joinedHooks())).toEqual(["repeat:1"]);
  expect(kinds(hooksOf(clientId))).toEqual(["firing"]);

  await send(AlertStatus.RESOLVED, Date.now() - 1000);
  expect(
    await eventually(async () => hooksOf(clientId).length === 2 && joinedHooks().length === 2, 20_000),
  ).toBe(true);
  await Bun.sleep(1000);
  expect(kinds(hooksOf(clientId))).toEqual(["firing", "resolved"]);
  expect(kinds(joinedHooks())).toEqual(["repeat:1", "resolved"]);
}, 90_000);
