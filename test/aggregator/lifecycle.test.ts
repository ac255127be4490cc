/**
 * The alert lifecycle (src/core/lifecycle.ts) through the aggregator as a real process: one firing
 * notification per episode whatever the re-sends and redeliveries, one resolved, nothing for an alert
 * never seen firing, and the sweep's resolve timeout and repeat reminders.
 */
import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, stopStage } from "../../harness/stages.ts";
import { deliveryRoute } from "../../src/core/grouping.ts";
import {
  type AlertMatched,
  AlertStatus,
  type DeliveryPolicy,
  DeliveryPolicySchema,
} from "../../src/gen/alerting/v1/alert_pb.ts";
import {
  aggregatorTopics,
  alertMatched,
  insertClientWithRule,
  startAggregator,
  useAggregatorFixture,
} from "./support.ts";

const db = useTestSchema("aggregator_lifecycle");
const { sql, producer, stages, clientIds } = useAggregatorFixture(db);

/** `muteRoute`: the client's rule has mute windows, so every record names its route (mute_rule_id). */
async function setUp(prefix: string, env: Record<string, string> = {}, { muteRoute = false } = {}) {
  const topics = await aggregatorTopics(prefix);
  // The sweep covers every alert state: an earlier test's aggregator would remind at its own interval.
  for (const stage of stages.splice(0)) expect(await stopStage(stage)).toBe(0);
  stages.push(await startAggregator(db, topics, env));
  const client = await insertClientWithRule(sql, prefix);
  clientIds.push(client.clientId);
  const submit = (
    alertId: string,
    status: AlertStatus,
    eventMs: number,
    endsAtMs = 0,
    extra: Partial<Pick<AlertMatched, "policy" | "mutedByRule" | "ruleIds" | "silencedBy">> = {},
  ) =>
    producer.send([
      {
        topic: topics.input,
        key: client.clientId,
        value: alertMatched({
          clientId: client.clientId,
          scope: `client:${client.clientId}`,
          alertId,
          ruleIds: [client.ruleId],
          status,
          eventTimeUnixMs: BigInt(eventMs),
          endsAtUnixMs: BigInt(endsAtMs),
          ...(muteRoute ? { policy: policy({ muteRuleId: client.ruleId }) } : {}),
          ...extra,
        }),
      },
    ]);
  return { client, submit, topics };
}

interface KindRow {
  alert_id: string;
  episode: number;
  kind: string;
  next_attempt_at: Date | null;
  status: string;
  muted_by_rule: string | null;
}

const kindsOf = (clientId: string) =>
  sql<
    KindRow[]
  >`SELECT alert_id, episode, kind, next_attempt_at, status, muted_by_rule::text FROM notifications
                 WHERE client_id = ${clientId} ORDER BY id`;

const policy = (fields: Partial<Omit<DeliveryPolicy, "$typeName">>) => create(DeliveryPolicySchema, fields);

/** The rows once there are `count` of them, and half a second more for any extra one. */
async function settledRows(clientId: string, count: number, timeoutMs = 20_000): Promise<KindRow[]> {
  const deadlineMs = performance.now() + timeoutMs;
  while ((await kindsOf(clientId)).length < count && performance.now() < deadlineMs) await Bun.sleep(100);
  await Bun.sleep(500);
  return kindsOf(clientId);
}

const summary = (rows: readonly KindRow[]) => rows.map((r) => `${r.alert_id} ${r.episode} ${r.kind}`);

test("fire, re-send, resolve, redeliver, fire again: one notification per episode and kind", async () => {
  const { client, submit } = await setUp("lifecycle");
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  await submit("am-a", AlertStatus.FIRING, t0, future);
  await submit("am-a", AlertStatus.FIRING, t0, future); // a redelivery
  await submit("am-a", AlertStatus.FIRING, t0 + 1000, future); // re-sent with a new startsAt
  // Sent with an end time only: never seen firing, so nothing to tell.
  await submit("am-never", AlertStatus.RESOLVED, Date.now(), Date.now() - 1000);
  expect(summary(await settledRows(client.clientId, 1))).toEqual(["am-a 1 firing"]);

  await submit("am-a", AlertStatus.RESOLVED, t0 + 1000, Date.now() - 1000);
  await submit("am-a", AlertStatus.RESOLVED, t0 + 1000, Date.now() - 1000); // a redelivery
  await submit("am-a", AlertStatus.FIRING, t0, future); // an old firing redelivered: no new episode
  expect(summary(await settledRows(client.clientId, 2))).toEqual(["am-a 1 firing", "am-a 1 resolved"]);

  await submit("am-a", AlertStatus.FIRING, Date.now(), future); // it fires again
  expect(summary(await settledRows(client.clientId, 3))).toEqual([
    "am-a 1 firing",
    "am-a 1 resolved",
    "am-a 2 firing",
  ]);
  const [state] = await sql<{ state: string; episode: number }[]>`
    SELECT state, episode FROM alert_states WHERE client_id = ${client.clientId} AND alert_key = 'am-a'`;
  expect(state).toEqual({ state: "firing", episode: 2 });
  // Kept resolved (episode 0), so its older firing submission, stored later, opens nothing.
  const [never] = await sql<{ state: string; episode: number }[]>`
    SELECT state, episode FROM alert_states WHERE client_id = ${client.clientId} AND alert_key = 'am-never'`;
  expect(never).toEqual({ state: "resolved", episode: 0 });
}, 60_000);

test("a rule that joins a firing route is told once, alone; reminders and the resolution name the rules told", async () => {
  // Reminders only when the test makes one due (below): the rows are then exactly these.
  const { client, submit } = await setUp("lifecycle-join", {
    REPEAT_INTERVAL_MS: "3600000",
    SWEEP_INTERVAL_MS: "100",
  });
  const joined = crypto.randomUUID(); // a second rule of the client, added while the alert fires
  const both = { ruleIds: [joined, client.ruleId] };
  const rulesOf = async () => {
    const rows = await sql<{ alert_id: string; kind: string; rule_ids: string[] }[]>`
      SELECT alert_id, kind, array_to_json(rule_ids) AS rule_ids FROM notifications
      WHERE client_id = ${client.clientId} ORDER BY id`;
    const name = (id: string) => (id === joined ? "joined" : "own");
    return rows.map((r) => `${r.alert_id} ${r.kind} ${r.rule_ids.map(name).sort()}`).sort();
  };
  /** Makes the alert's next reminder due now, and waits for it. */
  const remind = async (kind: string) => {
    await sql`UPDATE alert_states SET last_notified_at = now() - interval '2 hours'
              WHERE client_id = ${client.clientId} AND alert_key = 'am-join'`;
    expect(
      await eventually(
        async () => (await rulesOf()).some((row) => row.startsWith(`am-join ${kind} `)),
        20_000,
      ),
    ).toBe(true);
  };
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  await submit("am-join", AlertStatus.FIRING, t0, future);
  await submit("am-only-resolved", AlertStatus.FIRING, t0, future);
  await settledRows(client.clientId, 2);
  await submit("am-join", AlertStatus.FIRING, t0, future, both); // the next re-send names both rules
  await submit("am-join", AlertStatus.FIRING, t0, future, both); // a redelivery: told already
  // The new rule matches only the resolution: never told of the firing, it is not told of its end.
  await submit("am-only-resolved", AlertStatus.RESOLVED, t0, Date.now() - 1000, both);
  const told = [
    "am-join firing own",
    "am-join repeat:1 joined",
    "am-only-resolved firing own",
    "am-only-resolved resolved own",
  ];
  await settledRows(client.clientId, 4);
  expect(await rulesOf()).toEqual(told.sort());

  // A reminder tells both; once the joined rule no longer matches (disabled), only the other.
  await remind("repeat:2");
  await submit("am-join", AlertStatus.FIRING, t0, future);
  const matchedOwn = async () => {
    const [row] = await sql<{ matched: string[] }[]>`
      SELECT array_to_json(matched_rule_ids) AS matched FROM alert_states
      WHERE client_id = ${client.clientId} AND alert_key = 'am-join'`;
    return row?.matched.length === 1;
  };
  expect(await eventually(matchedOwn, 20_000)).toBe(true);
  await remind("repeat:3");
  // The resolution sent by the source names both: the joined rule was told, so it hears of the end.
  await submit("am-join", AlertStatus.RESOLVED, t0, Date.now() - 1000, both);
  await settledRows(client.clientId, 7);
  expect(await rulesOf()).toEqual(
    [...told, "am-join repeat:2 joined,own", "am-join repeat:3 own", "am-join resolved joined,own"].sort(),
  );
  const [state] = await sql<{ told: string[]; matched: string[] }[]>`
    SELECT array_to_json(told_rule_ids) AS told, array_to_json(matched_rule_ids) AS matched FROM alert_states
    WHERE client_id = ${client.clientId} AND alert_key = 'am-join'`;
  expect(state).toEqual({ told: [joined, client.ruleId].sort(), matched: [joined, client.ruleId].sort() });
}, 60_000);

test("v1 alerts keep one notification per alert id, episode 0, no state", async () => {
  const { client, submit } = await setUp("lifecycle-v1");
  await submit("v1-alert", AlertStatus.UNSPECIFIED, Date.now());
  await submit("v1-alert", AlertStatus.UNSPECIFIED, Date.now() + 5);
  expect(summary(await settledRows(client.clientId, 1))).toEqual(["v1-alert 0 firing"]);
  const states = await sql`SELECT 1 FROM alert_states WHERE client_id = ${client.clientId}`;
  expect(states.length).toBe(0);
}, 60_000);

test("the sweep: repeat reminders while firing, resolved after resolve_timeout, due at once", async () => {
  const { client, submit } = await setUp("lifecycle-sweep", {
    RESOLVE_TIMEOUT_MS: "2500",
    REPEAT_INTERVAL_MS: "700",
    SWEEP_INTERVAL_MS: "100",
  });
  await submit("am-sweep", AlertStatus.FIRING, Date.now());
  // An end time in the future resolves the alert once it passes, before the resolve timeout.
  await submit("am-ends", AlertStatus.FIRING, Date.now(), Date.now() + 1200);
  const deadlineMs = performance.now() + 20_000;
  let rows: KindRow[] = [];
  while (performance.now() < deadlineMs) {
    rows = await kindsOf(client.clientId);
    if (rows.filter((row) => row.kind === "resolved").length === 2) break;
    await Bun.sleep(100);
  }
  await Bun.sleep(1000); // nothing more once resolved
  rows = await kindsOf(client.clientId);
  const kinds = (alertId: string) => rows.filter((r) => r.alert_id === alertId).map((r) => r.kind);
  const sweep = kinds("am-sweep");
  expect(sweep[0]).toBe("firing");
  expect(sweep.at(-1)).toBe("resolved");
  const repeats = sweep.slice(1, -1);
  expect(repeats.length).toBeGreaterThanOrEqual(1);
  expect(repeats).toEqual(repeats.map((_, i) => `repeat:${i + 1}`));
  expect(kinds("am-ends")[0]).toBe("firing");
  expect(kinds("am-ends").at(-1)).toBe("resolved");
  expect(kinds("am-ends").length).toBeLessThan(sweep.length);
  // The sweep's rows are due at once: the sender's scheduler delivers them without a ready event.
  for (const row of rows.filter((r) => r.kind !== "firing"))
    expect(row.next_attempt_at?.getTime()).toBeLessThan(Date.now());
}, 60_000);

test("a resolution stored before its firing submission: the alert ends resolved, nothing to tell", async () => {
  const { client, submit } = await setUp("lifecycle-overtake", {
    RESOLVE_TIMEOUT_MS: "1500",
    SWEEP_INTERVAL_MS: "100",
  });
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  // As when the aggregator's concurrent batches store a resolution before the firing one it follows.
  await submit("am-late", AlertStatus.RESOLVED, t0, Date.now() - 1000);
  await submit("am-late", AlertStatus.FIRING, t0, future);
  await submit("am-late", AlertStatus.FIRING, t0 + 500, future); // a re-send before the end, overtaken too
  // In order, for comparison: notified of both.
  await submit("am-order", AlertStatus.FIRING, t0, future);
  await submit("am-order", AlertStatus.RESOLVED, t0, Date.now() - 1000);
  expect(summary(await settledRows(client.clientId, 2))).toEqual([
    "am-order 1 firing",
    "am-order 1 resolved",
  ]);
  const states = await sql<{ alert_key: string; state: string; episode: number }[]>`
    SELECT alert_key, state, episode FROM alert_states WHERE client_id = ${client.clientId} ORDER BY alert_key`;
  expect([...states]).toEqual([
    { alert_key: "am-late", state: "resolved", episode: 0 },
    { alert_key: "am-order", state: "resolved", episode: 1 },
  ]);
  // It fires again, after its end: a new episode, notified.
  await submit("am-late", AlertStatus.FIRING, Date.now(), future);
  expect(summary(await settledRows(client.clientId, 3))).toEqual([
    "am-order 1 firing",
    "am-order 1 resolved",
    "am-late 1 firing",
  ]);
}, 60_000);

test("per-rule policy: skip resolved, and reminders at the alert's own repeat interval", async () => {
  const { client, submit } = await setUp("lifecycle-policy", {
    REPEAT_INTERVAL_MS: "3600000",
    SWEEP_INTERVAL_MS: "100",
  });
  const future = Date.now() + 600_000;
  const skip = policy({ skipResolved: true });
  await submit("am-skip", AlertStatus.FIRING, Date.now() - 5000, future, { policy: skip });
  await submit("am-fast", AlertStatus.FIRING, Date.now(), future, {
    policy: policy({ repeatIntervalMs: 1000n }),
  });
  await submit("am-default", AlertStatus.FIRING, Date.now(), future);
  await submit("am-skip", AlertStatus.RESOLVED, Date.now() - 5000, Date.now() - 1000, { policy: skip });
  const deadlineMs = performance.now() + 20_000;
  let rows: KindRow[] = [];
  while (performance.now() < deadlineMs) {
    rows = await kindsOf(client.clientId);
    if (rows.some((r) => r.kind === "repeat:2")) break;
    await Bun.sleep(100);
  }
  const kinds = (alertId: string) => rows.filter((r) => r.alert_id === alertId).map((r) => r.kind);
  expect(kinds("am-skip")).toEqual(["firing"]);
  expect(kinds("am-fast")).toEqual(["firing", "repeat:1", "repeat:2"]);
  expect(kinds("am-default")).toEqual(["firing"]);
  const [skipState] = await sql<{ state: string; send_resolved: boolean }[]>`
    SELECT state, send_resolved FROM alert_states WHERE client_id = ${client.clientId} AND alert_key = 'am-skip'`;
  expect(skipState).toEqual({ state: "resolved", send_resolved: false });
}, 60_000);

test("muted by a rule's window: that row SILENCED; the first unmuted re-send notifies once", async () => {
  const { client, submit } = await setUp("lifecycle-muted", {}, { muteRoute: true });
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  const mute = { mutedByRule: client.ruleId };
  const counts = (rows: readonly KindRow[]) => {
    const byKey: Record<string, number> = {};
    for (const r of rows) {
      const key = `${r.alert_id} ${r.kind} ${r.status}${r.muted_by_rule ? " muted" : ""}`;
      byKey[key] = (byKey[key] ?? 0) + 1;
    }
    return byKey;
  };
  // Inside the window: recorded, nothing to send; a muted re-send adds nothing.
  await submit("am-muted", AlertStatus.FIRING, t0, future, mute);
  await submit("am-muted", AlertStatus.FIRING, t0, future, mute);
  // Never notified: its resolution sends nothing either, muted or not.
  await submit("am-never", AlertStatus.FIRING, t0, future, mute);
  await submit("am-never", AlertStatus.RESOLVED, t0, Date.now() - 1000);
  await submit("v1-muted", AlertStatus.UNSPECIFIED, t0, 0, mute);
  expect(counts(await settledRows(client.clientId, 3))).toEqual({
    "am-muted firing SILENCED muted": 1,
    "am-never firing SILENCED muted": 1,
    "v1-muted firing SILENCED muted": 1,
  });

  // The window closed while it still fires (same startsAt): the client hears of it now, once.
  await submit("am-muted", AlertStatus.FIRING, t0, future);
  await submit("am-muted", AlertStatus.FIRING, t0, future);
  const unmuted = await settledRows(client.clientId, 4);
  expect(counts(unmuted)).toEqual({
    "am-muted firing SILENCED muted": 1,
    "am-muted repeat:1 RECEIVED": 1,
    "am-never firing SILENCED muted": 1,
    "v1-muted firing SILENCED muted": 1,
  });
  const reminder = unmuted.find((r) => r.kind === "repeat:1");
  expect(reminder?.next_attempt_at).not.toBeNull();

  // Every record redelivered, muted or not: nothing duplicated, and the window no longer hides it.
  await submit("am-muted", AlertStatus.FIRING, t0, future, mute);
  await submit("am-muted", AlertStatus.FIRING, t0, future);
  await submit("am-never", AlertStatus.FIRING, t0, future, mute);
  await submit("am-never", AlertStatus.RESOLVED, t0, Date.now() - 1000);
  await submit("v1-muted", AlertStatus.UNSPECIFIED, t0, 0, mute);
  // Notified now, so its resolution is sent.
  await submit("am-muted", AlertStatus.RESOLVED, t0, Date.now() - 1000);
  expect(counts(await settledRows(client.clientId, 5))).toEqual({
    "am-muted firing SILENCED muted": 1,
    "am-muted repeat:1 RECEIVED": 1,
    "am-muted resolved RECEIVED": 1,
    "am-never firing SILENCED muted": 1,
    "v1-muted firing SILENCED muted": 1,
  });
  const states = await sql<{ alert_key: string; state: string; notified: boolean; repeat_count: number }[]>`
    SELECT alert_key, state, notified, repeat_count FROM alert_states
    WHERE client_id = ${client.clientId} ORDER BY alert_key`;
  expect([...states]).toEqual([
    { alert_key: "am-muted", state: "resolved", notified: true, repeat_count: 1 },
    { alert_key: "am-never", state: "resolved", notified: false, repeat_count: 0 },
  ]);
}, 60_000);

test("silences: an episode opened muted and silenced is notified once both ended; a silence since holds reminders back", async () => {
  const { client, submit } = await setUp(
    "lifecycle-silenced",
    { REPEAT_INTERVAL_MS: "3600000", SWEEP_INTERVAL_MS: "100" },
    { muteRoute: true },
  );
  const silence = crypto.randomUUID();
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  const rows = async () =>
    (await kindsOf(client.clientId)).map((r) => `${r.alert_id} ${r.kind} ${r.status}`).sort();
  await submit("am-both", AlertStatus.FIRING, t0, future, {
    mutedByRule: client.ruleId,
    silencedBy: silence,
  });
  await submit("am-quiet", AlertStatus.FIRING, t0, future);
  await settledRows(client.clientId, 2);
  await submit("am-both", AlertStatus.FIRING, t0, future, { silencedBy: silence }); // the window closed
  await submit("am-quiet", AlertStatus.FIRING, t0, future, { silencedBy: silence }); // silenced since
  await Bun.sleep(1000);
  expect(await rows()).toEqual(["am-both firing SILENCED", "am-quiet firing RECEIVED"]);
  await submit("am-both", AlertStatus.FIRING, t0, future); // the silence ended too: told now, not silent
  await settledRows(client.clientId, 3);
  expect(await rows()).toEqual([
    "am-both firing SILENCED",
    "am-both repeat:1 RECEIVED",
    "am-quiet firing RECEIVED",
  ]);

  // am-quiet's reminder falls due while silenced: the schedule moves on, no row.
  const repeatCount = async () => {
    const [state] = await sql<{ repeat_count: number }[]>`
      SELECT repeat_count FROM alert_states WHERE client_id = ${client.clientId} AND alert_key = 'am-quiet'`;
    return state?.repeat_count;
  };
  const makeDue = () => sql`UPDATE alert_states SET last_notified_at = now() - interval '2 hours'
                            WHERE client_id = ${client.clientId} AND alert_key = 'am-quiet'`;
  await makeDue();
  expect(await eventually(async () => (await repeatCount()) === 1, 20_000)).toBe(true);
  expect(await rows()).toHaveLength(3);
  // Unsilenced: nothing at once (the rule was told), and the next reminder is sent.
  await submit("am-quiet", AlertStatus.FIRING, t0, future);
  await Bun.sleep(1000);
  expect(await rows()).toHaveLength(3);
  await makeDue();
  await settledRows(client.clientId, 4);
  expect(await rows()).toEqual([
    "am-both firing SILENCED",
    "am-both repeat:1 RECEIVED",
    "am-quiet firing RECEIVED",
    "am-quiet repeat:2 RECEIVED",
  ]);
}, 60_000);

test("the sweep reminds an episode only once it was notified, copying its unmuted row", async () => {
  const { client, submit } = await setUp(
    "lifecycle-muted-sweep",
    { REPEAT_INTERVAL_MS: "500", SWEEP_INTERVAL_MS: "100" },
    { muteRoute: true },
  );

  const future = Date.now() + 600_000;
  await submit("am-quiet", AlertStatus.FIRING, Date.now(), future, { mutedByRule: client.ruleId });
  await Bun.sleep(1500); // three intervals: no reminder for an episode never notified
  expect(summary(await kindsOf(client.clientId))).toEqual(["am-quiet 1 firing"]);
  await submit("am-quiet", AlertStatus.FIRING, Date.now(), future);
  const deadlineMs = performance.now() + 20_000;
  let rows: KindRow[] = [];
  while (performance.now() < deadlineMs) {
    rows = await kindsOf(client.clientId);
    if (rows.some((r) => r.kind === "repeat:3")) break;
    await Bun.sleep(100);
  }
  expect(rows.slice(0, 4).map((r) => [r.kind, r.status, r.muted_by_rule])).toEqual([
    ["firing", "SILENCED", client.ruleId],
    ["repeat:1", "RECEIVED", null],
    ["repeat:2", "RECEIVED", null],
    ["repeat:3", "RECEIVED", null],
  ]);
}, 60_000);

test("concurrent batches: each alert's firing and resolution, in adjacent batches, are both notified", async () => {
  // Tiny batches, several processed at once: a firing submission and its resolution mostly fall into
  // consecutive batches that run concurrently; the lifecycle part is still applied in consumed order.
  const { client, topics } = await setUp("lifecycle-concurrent", {
    BATCH_SIZE_MAX: "3",
    BATCH_WAIT_MS: "0",
    PROCESS_CONCURRENCY_MAX: "4",
  });
  const alertsCount = 200;
  const t0 = Date.now() - 60_000;
  const record = (index: number, status: AlertStatus) => ({
    topic: topics.input,
    key: client.clientId,
    value: alertMatched({
      clientId: client.clientId,
      scope: `client:${client.clientId}`,
      alertId: `am-c-${index}`,
      ruleIds: [client.ruleId],
      status,
      eventTimeUnixMs: BigInt(t0 + index),
      endsAtUnixMs: status === AlertStatus.RESOLVED ? BigInt(t0 + index + 500) : 0n,
    }),
  });
  await producer.send(
    Array.from({ length: alertsCount }, (_, index) => [
      record(index, AlertStatus.FIRING),
      record(index, AlertStatus.RESOLVED),
    ]).flat(),
  );
  const rows = await settledRows(client.clientId, 2 * alertsCount, 40_000);
  const kinds = (kind: string) => new Set(rows.filter((r) => r.kind === kind).map((r) => r.alert_id)).size;
  expect({ rows: rows.length, firing: kinds("firing"), resolved: kinds("resolved") }).toEqual({
    rows: 2 * alertsCount,
    firing: alertsCount,
    resolved: alertsCount,
  });
}, 60_000);

test("two routes of one alert: a lifecycle each, redeliveries of either deduplicated", async () => {
  const { client, submit } = await setUp("lifecycle-routes");
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  const grouped = { policy: policy({ groupBy: ["source"], groupWaitMs: 0n }) };
  // The evaluator writes one record per route: here the rule without grouping's and a grouping one's.
  await submit("am-r", AlertStatus.FIRING, t0, future);
  await submit("am-r", AlertStatus.FIRING, t0, future, grouped);
  await submit("am-r", AlertStatus.FIRING, t0, future, grouped); // a redelivery
  expect(summary(await settledRows(client.clientId, 2))).toEqual(["am-r 1 firing", "am-r 1 firing"]);

  await submit("am-r", AlertStatus.RESOLVED, t0, Date.now() - 1000, grouped);
  await submit("am-r", AlertStatus.RESOLVED, t0, Date.now() - 1000);
  expect(await settledRows(client.clientId, 4)).toHaveLength(4);
  const route = deliveryRoute({ groupBy: ["source"], groupWaitMs: 0n });
  expect(
    (
      await sql<{ route: string; kind: string; grouped: boolean }[]>`
      SELECT route, kind, group_key IS NOT NULL AS grouped FROM notifications
      WHERE client_id = ${client.clientId} ORDER BY route, id`
    ).map((r) => ({ ...r })),
  ).toEqual([
    { route: "", kind: "firing", grouped: false },
    { route: "", kind: "resolved", grouped: false },
    { route, kind: "firing", grouped: true },
    { route, kind: "resolved", grouped: true },
  ]);
  const states = await sql`
    SELECT route, state, episode FROM alert_states WHERE client_id = ${client.clientId} ORDER BY route`;
  expect(states.map((s) => ({ ...s }))).toEqual([
    { route: "", state: "resolved", episode: 1 },
    { route, state: "resolved", episode: 1 },
  ]);
});

test("the sweep ends a route a rule change left behind without a notification; live routes resolve", async () => {
  const { client, submit } = await setUp("lifecycle-left-behind", { SWEEP_INTERVAL_MS: "100" });
  const t0 = Date.now() - 60_000;
  const future = Date.now() + 600_000;
  const grouped = { policy: policy({ groupBy: ["source"], groupWaitMs: 0n }) };
  const route = deliveryRoute({ groupBy: ["source"], groupWaitMs: 0n });
  for (const alertId of ["am-left", "am-live"]) {
    await submit(alertId, AlertStatus.FIRING, t0, future);
    await submit(alertId, AlertStatus.FIRING, t0, future, grouped);
  }
  expect(await settledRows(client.clientId, 4)).toHaveLength(4);
  // am-left: its route "" last had a submission two minutes before its grouped route (a rule change
  // since moved the rules); am-live: both routes last seen together. Both are due now.
  await sql`
    UPDATE alert_states SET ends_at = now() - interval '1 second',
      last_seen_at = CASE WHEN alert_key = 'am-left' AND route = '' THEN now() - interval '2 minutes'
                          ELSE now() - interval '1 second' END
    WHERE client_id = ${client.clientId} AND (alert_key = 'am-live' OR route = '')`;
  expect(
    await eventually(async () => {
      const states =
        await sql`SELECT 1 FROM alert_states WHERE client_id = ${client.clientId} AND state = 'firing'`;
      return states.length === 1;
    }, 10_000),
  ).toBe(true);
  await Bun.sleep(500);
  const rows = await sql<{ alert_id: string; route: string; kind: string }[]>`
    SELECT alert_id, route, kind FROM notifications WHERE client_id = ${client.clientId} ORDER BY alert_id, route, id`;
  expect(rows.map((r) => `${r.alert_id} ${r.route === "" ? "ungrouped" : "grouped"} ${r.kind}`)).toEqual([
    "am-left ungrouped firing",
    "am-left grouped firing",
    "am-live ungrouped firing",
    "am-live ungrouped resolved",
    "am-live grouped firing",
    "am-live grouped resolved",
  ]);
  const [firingState] = await sql`
    SELECT alert_key, route FROM alert_states WHERE client_id = ${client.clientId} AND state = 'firing'`;
  expect({ ...firingState }).toEqual({ alert_key: "am-left", route });
});
