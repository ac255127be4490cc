/**
 * GroupStore against the real database, step by step, where the stage tests cannot stop: a window
 * opened by a sender that died before fixing its rows gets them when re-driven (same window number),
 * the rows cap leaves the rest for the next window, a fixed window's rows never change, a window that
 * found no rows is deleted, a row of a window in flight (not written yet) is never taken by a second
 * window, not even by two senders fixing windows of one group at once, an outcome writes its
 * window's rows, and a retry skips the addresses delivered earlier.
 */
import { expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { deliveryStoreSettings } from "../../src/adapters/delivery-store.ts";
import {
  type ClaimedGroupSend,
  fixMembersStatement,
  GroupStore,
  type OpenedWindow,
} from "../../src/adapters/group-store.ts";
import { insertNotifications } from "../../src/adapters/notification-store.ts";
import { groupKey } from "../../src/core/grouping.ts";
import { groupedRow, tenant } from "./support.ts";

const db = useTestSchema("group_store");
const { sql } = db;
/** A pool with the sender's settings (sequential scans off), as the stage runs its statements. */
const useTestSchemaPool = () => db.connect({ settings: deliveryStoreSettings });
const leaseMs = 1000;
const settings = { groupBy: ["source"], groupWaitMs: 0, groupIntervalMs: 60_000, groupAlertsMax: 100 };

async function grouped(prefix: string) {
  const t = await tenant(sql, prefix);
  const ruleId = await t.rule();
  const row = (alertId: string) => groupedRow(t.clientId, ruleId, alertId, `${prefix}-src`, settings);
  const key = groupKey(t.clientId, settings, { source: `${prefix}-src` });
  const ids = async () =>
    (
      await sql<{ id: string; send: string | null; status: string }[]>`
        SELECT n.id::text, n.group_send_id::text AS send, n.status
        FROM notifications n WHERE n.client_id = ${t.clientId} ORDER BY n.id`
    ).map((r) => r);
  return { t, key, row, ids };
}

/** The rows a send took, in id order. */
async function membersOf(sendId: string): Promise<string[]> {
  const [send] = await sql<{ ids: string[] | null }[]>`
    SELECT member_ids::text[] AS ids FROM group_sends WHERE id = ${sendId}`;
  return send?.ids ?? [];
}

const sent = (send: ClaimedGroupSend, status: "SENT" | "RETRY") => ({
  groupSendId: send.id,
  attempts: send.attempts,
  decision: status === "SENT" ? { status } : { status, nextAttemptDelayMs: 60_000, error: "HTTP 503" },
});
/** Every row of `send` with `status`, as the dispatcher decides them one by one. */
const rowStatuses = (send: ClaimedGroupSend, status: "SENT" | "RETRY") =>
  send.members.map((member) => ({ groupSendId: send.id, notificationId: member.id, status, error: null }));

test("a window opened but never fixed gets its rows when re-driven, capped, under its window number", async () => {
  const store = new GroupStore(sql, leaseMs, 2);
  const g = await grouped("gs-crash");
  // group_wait 0: due at once. None is announced: a group's schedule drives its rows.
  expect(await insertNotifications(sql, [g.row("a"), g.row("b"), g.row("c")])).toEqual([]);

  const windows = (await store.openWindows(100)).filter((w) => w.groupKey === g.key);
  expect(windows).toHaveLength(1);
  const opened = windows[0] as OpenedWindow;
  expect(opened).toMatchObject({ windowNo: 0, attempts: 1 });
  // Its incarnation, part of its Idempotency-Key, as a number (postgres.js reads a bigint as text).
  const [{ incarnation } = { incarnation: "" }] = await sql<{ incarnation: string }[]>`
    SELECT incarnation::text FROM notification_groups WHERE group_key = ${g.key}`;
  expect(opened.incarnation).toBe(Number(incarnation));
  // The sender dies here. A row arrives meanwhile; the group is not due again for a minute.
  await insertNotifications(sql, [g.row("d")]);
  expect((await store.openWindows(100)).filter((w) => w.groupKey === g.key)).toEqual([]);
  expect(await store.redriveDue(100)).toEqual([]); // its lease has not expired

  await Bun.sleep(leaseMs + 100);
  const [redriven] = (await store.redriveDue(100)).filter((s) => s.groupKey === g.key);
  const rows = await g.ids();
  // The cap: the two oldest waiting rows, the rest for the next window.
  expect(redriven).toMatchObject({
    id: opened.id,
    windowNo: 0,
    incarnation: Number(incarnation),
    attempts: 2,
  });
  expect(redriven?.members.map((m) => m.id)).toEqual(rows.slice(0, 2).map((r) => r.id));
  expect(await membersOf(opened.id)).toEqual(rows.slice(0, 2).map((r) => r.id));
  // Fixing writes no row: they are written when their send records an outcome.
  expect(rows.map((r) => [r.send, r.status])).toEqual(Array(4).fill([null, "RECEIVED"]));
  const [group] = await sql<{ has_pending: boolean; next_window: number }[]>`
    SELECT has_pending, next_window FROM notification_groups WHERE group_key = ${g.key}`;
  expect(group).toEqual({ has_pending: true, next_window: 1 });

  // Fixed once: fixing again (a slow first sender) takes nothing and changes nothing.
  expect(await store.fixMembers([opened])).toEqual([]);
  expect(await membersOf(opened.id)).toEqual(rows.slice(0, 2).map((r) => r.id));
  const [send] = await sql<{ alerts: number; fixed: boolean }[]>`
    SELECT alerts, members_fixed_at IS NOT NULL AS fixed FROM group_sends WHERE id = ${opened.id}`;
  expect(send).toEqual({ alerts: 2, fixed: true });
});

test("a window that finds no waiting rows is deleted; its number is not reused", async () => {
  const store = new GroupStore(sql, 30_000, 100);
  const g = await grouped("gs-empty");
  await insertNotifications(sql, [g.row("a")]);
  const first = (await store.claimDue(100)).filter((s) => s.groupKey === g.key);
  expect(first.map((s) => [s.windowNo, s.members.length])).toEqual([[0, 1]]);
  const [sentFirst] = first as [ClaimedGroupSend];
  await store.recordAttempt([], [sent(sentFirst, "SENT")], rowStatuses(sentFirst, "SENT"));

  // Marked waiting with nothing waiting (a redelivered record re-marks its group).
  await sql`UPDATE notification_groups SET has_pending = true, next_due_at = now() WHERE group_key = ${g.key}`;
  const windows = (await store.openWindows(100)).filter((w) => w.groupKey === g.key);
  expect(windows.map((w) => w.windowNo)).toEqual([1]);
  expect(await store.fixMembers(windows)).toEqual([]);
  const sends = await sql<{ window_no: number }[]>`
    SELECT window_no FROM group_sends WHERE group_key = ${g.key} ORDER BY window_no`;
  expect(sends.map((s) => s.window_no)).toEqual([0]);

  await insertNotifications(sql, [g.row("b")]);
  await sql`UPDATE notification_groups SET next_due_at = now() WHERE group_key = ${g.key}`;
  const next = (await store.claimDue(100)).filter((s) => s.groupKey === g.key);
  expect(next.map((s) => [s.windowNo, s.members.length])).toEqual([[2, 1]]);
});

test("a window in flight holds its group's next window back; its outcome writes its rows", async () => {
  const store = new GroupStore(sql, 30_000, 100);
  const g = await grouped("gs-flight");
  const due = () => sql`UPDATE notification_groups SET next_due_at = now() WHERE group_key = ${g.key}`;
  const claim = async () => (await store.claimDue(100)).filter((s) => s.groupKey === g.key);
  await insertNotifications(sql, [g.row("a"), g.row("b")]);
  const [first] = (await claim()) as [ClaimedGroupSend];
  await insertNotifications(sql, [g.row("c")]);
  await due();
  // Due, with a row waiting, but the first window is still in flight: the next one waits for it.
  expect(await claim()).toEqual([]);
  expect(await store.nextDueInMs()).toBeNull();
  await store.recordAttempt([], [sent(first, "RETRY")], rowStatuses(first, "RETRY"));
  // One that is to be retried does not hold the group back: the next window takes only what came since.
  const [second] = (await claim()) as [ClaimedGroupSend];
  const rowIds = (await g.ids()).map((r) => r.id);
  expect([first.members.map((m) => m.id), second.members.map((m) => m.id)]).toEqual([
    rowIds.slice(0, 2),
    rowIds.slice(2),
  ]);
  await store.recordAttempt([], [sent(second, "SENT")], rowStatuses(second, "SENT"));
  expect((await g.ids()).map((r) => [r.send, r.status])).toEqual([
    [first.id, "RETRY"],
    [first.id, "RETRY"],
    [second.id, "SENT"],
  ]);
});

test("a row its send already ended keeps its status on the send's later attempts", async () => {
  const store = new GroupStore(sql, 30_000, 100);
  const g = await grouped("gs-ended");
  await insertNotifications(sql, [g.row("a"), g.row("b")]);
  const [send] = (await store.claimDue(100)).filter((s) => s.groupKey === g.key) as [ClaimedGroupSend];
  const [a, b] = send.members.map((m) => m.id) as [string, string];
  const row = (id: string, status: "SENT" | "RETRY" | "FAILED", error: string | null = null) => ({
    groupSendId: send.id,
    notificationId: id,
    status,
    error,
  });
  await store.recordAttempt([], [sent(send, "RETRY")], [row(a, "SENT"), row(b, "RETRY")]);
  await sql`UPDATE group_sends SET next_attempt_at = now() WHERE id = ${send.id}`;
  const [retried] = (await store.redriveDue(100)).filter((s) => s.id === send.id) as [ClaimedGroupSend];
  // a's endpoint was disabled meanwhile: this attempt would call it FAILED, but it was delivered.
  await store.recordAttempt(
    [],
    [{ groupSendId: retried.id, attempts: retried.attempts, decision: { status: "SENT" } }],
    [row(a, "FAILED", "no enabled endpoint"), row(b, "SENT")],
  );
  expect((await g.ids()).map((r) => r.status)).toEqual(["SENT", "SENT"]);
});

test("two senders fixing windows of one group at once never share a row", async () => {
  const stores = [new GroupStore(db.connect(), 30_000, 100), new GroupStore(db.connect(), 30_000, 100)];
  for (let round = 0; round < 10; round++) {
    const g = await grouped(`gs-race-${round}`);
    await insertNotifications(
      sql,
      Array.from({ length: 50 }, (_, k) => g.row(`r-${k}`)),
    );
    // Two windows of the group opened (one by each sender), neither fixed yet.
    const [first] = ((await stores[0]?.openWindows(1000)) ?? []).filter((w) => w.groupKey === g.key);
    // As when a window to be retried is re-driven while its group's next window is open: both in flight.
    await sql`UPDATE group_sends SET status = 'RETRY' WHERE id = ${first?.id ?? "0"}`;
    await sql`UPDATE notification_groups SET has_pending = true, next_due_at = now() WHERE group_key = ${g.key}`;
    const [second] = ((await stores[1]?.openWindows(1000)) ?? []).filter((w) => w.groupKey === g.key);
    await sql`UPDATE group_sends SET status = 'SENDING' WHERE id = ${first?.id ?? "0"}`;
    const fixed = await Promise.all([
      stores[0]?.fixMembers([first as OpenedWindow]),
      stores[1]?.fixMembers([second as OpenedWindow]),
    ]);
    const taken = fixed.flatMap((sends) => (sends ?? []).flatMap((s) => s.members.map((m) => m.id)));
    expect(taken.sort()).toEqual((await g.ids()).map((r) => r.id).sort());
  }
});

interface PlanNode {
  "Rows Removed by Join Filter"?: number;
  Plans?: PlanNode[];
}

const joinFiltered = (node: PlanNode): number =>
  (node["Rows Removed by Join Filter"] ?? 0) +
  (node.Plans ?? []).reduce((sum, p) => sum + joinFiltered(p), 0);

test("fixing windows stays linear in their rows whatever the statistics say", async () => {
  // The sender's pool settings, and statistics from when the table was small (autovacuum behind).
  const senderSql = useTestSchemaPool();
  const old = await tenant(sql, "gs-plan-old");
  const sentRows = (from: number, count: number) => sql`
    INSERT INTO notifications (client_id, alert_id, severity, source, name, rule_ids, event_time, status)
    SELECT ${old.clientId}, 'old-' || g, 'HIGH', 's', 'n', '{}'::uuid[], now(), 'SENT'
    FROM generate_series(${from}::int, ${from + count - 1}::int) g`;
  await sentRows(0, 2000);
  await sql`ANALYZE notifications`;
  await sentRows(2000, 50_000);
  const windowsCount = 50;
  const perWindow = 100;
  const gs = await Promise.all(Array.from({ length: windowsCount }, (_, i) => grouped(`gs-plan-${i}`)));
  for (const g of gs)
    await insertNotifications(
      sql,
      Array.from({ length: perWindow }, (_, k) => g.row(`p-${k}`)),
    );
  const store = new GroupStore(senderSql, 30_000, 10_000);
  const windows = (await store.openWindows(1000)).filter((w) => gs.some((g) => g.key === w.groupKey));
  expect(windows).toHaveLength(windowsCount);
  const [explained] = await senderSql.unsafe<{ "QUERY PLAN": { Plan: PlanNode }[] }[]>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${fixMembersStatement}`,
    [`{${windows.map((w) => w.id).join(",")}}`, 10_000] as never[],
  );
  const plan = explained?.["QUERY PLAN"][0]?.Plan as PlanNode;
  const rows = windowsCount * perWindow;
  // Each picked row by its id: joining every row to every window (rows x windows, 250,000 here; many
  // windows of a few rows, as under a storm, made the planner choose it) or to every row were traps.
  expect(joinFiltered(plan)).toBeLessThan(rows);
  const fixed = await sql<{ n: number }[]>`
    SELECT sum(cardinality(member_ids))::int AS n FROM group_sends WHERE id = ANY(${windows.map((w) => w.id)}::bigint[])`;
  expect(fixed[0]?.n).toBe(rows);
});

test("an address a send delivered is not pending on its retry when another endpoint row now stands for it", async () => {
  const store = new GroupStore(sql, leaseMs, 100);
  const t = await tenant(sql, "gs-address");
  const rule = await t.rule();
  const other = await t.rule();
  const delivered = await t.endpoint(rule, "webhook", "https://example.com/same");
  const failing = await t.endpoint(rule, "webhook", "https://example.com/down");
  const source = "gs-address-src";
  const key = groupKey(t.clientId, settings, { source });
  await insertNotifications(sql, [
    { ...groupedRow(t.clientId, rule, "a", source, settings), ruleIds: [rule, other] },
  ]);
  const [send] = (await store.claimDue(100)).filter((s) => s.groupKey === key);
  if (send === undefined) throw new Error("no window opened");
  const attempt = (endpointId: string, outcome: string) => ({
    groupSendId: send.id,
    attempt: send.attempts,
    endpointId,
    channel: "webhook",
    alerts: 1,
    outcome,
    httpStatus: outcome === "SUCCESS" ? 200 : 503,
    smtpReply: null,
    latencyMs: 3,
    error: null,
  });
  const record = () =>
    store.recordAttempt(
      [attempt(delivered, "SUCCESS"), attempt(failing, "RETRYABLE")],
      [
        {
          groupSendId: send.id,
          attempts: send.attempts,
          decision: { status: "RETRY", nextAttemptDelayMs: 0 },
        },
      ],
      rowStatuses(send, "RETRY"),
    );
  await record();
  await record(); // again, as after a commit whose answer was lost: nothing more is written
  const recorded =
    await sql`SELECT outcome FROM group_deliveries WHERE group_send_id = ${send.id} ORDER BY 1`;
  expect(recorded.map((r) => r.outcome)).toEqual(["RETRYABLE", "SUCCESS"]);
  // The same URL on the other rule, under a lower id, and the endpoint that delivered disabled.
  await sql`INSERT INTO endpoints (id, rule_id, client_id, type, value)
            VALUES ('00000000-0000-4000-8000-000000000001', ${other}, ${t.clientId}, 'webhook',
                    'https://example.com/same')`;
  await sql`UPDATE endpoints SET enabled = false WHERE id = ${delivered}`;

  const [retried] = (await store.redriveDue(100)).filter((s) => s.groupKey === key);
  if (retried === undefined) throw new Error("not re-driven");
  const work = (await store.endpointWork([retried])).get(retried.id);
  expect(work?.pending.map((p) => p.endpoint.id)).toEqual([failing]);
  expect(work?.finished.map((f) => f.outcome)).toEqual(["SUCCESS"]);
});
