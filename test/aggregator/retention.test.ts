/**
 * Retention (src/adapters/retention-store.ts) against the real database: what is over and older than
 * the retention goes, with its delivery attempts; what is pending, recent or still needed stays; an
 * idle group goes once nothing names it, and comes back as a new incarnation under other keys; and
 * the aggregator runs it by itself.
 */
import { afterAll, expect, test } from "bun:test";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, stopStage } from "../../harness/stages.ts";
import { insertNotifications } from "../../src/adapters/notification-store.ts";
import { deleteExpired, deleteIdleGroups, type GroupCursor } from "../../src/adapters/retention-store.ts";
import { groupIdempotencyKey, groupKey } from "../../src/core/grouping.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { startRetention } from "../../src/stages/aggregator/retention.ts";
import { groupedRow, tenant } from "../sender/support.ts";
import { aggregatorTopics, startAggregator } from "./support.ts";

const db = useTestSchema("aggregator_retention");
const { sql } = db;
const dayMs = 86_400_000;
const retentionMs = 14 * dayMs;

/** Moves a notification `days` into the past, as if created then and last changed `changedDays` ago. */
async function age(id: string, days: number, changedDays = days): Promise<void> {
  await sql`
    UPDATE notifications SET created_at = now() - make_interval(days => ${days}),
                             updated_at = now() - make_interval(days => ${changedDays})
    WHERE id = ${id}`;
}

async function remaining(table: string, ids: readonly string[]): Promise<string[]> {
  const rows = await sql.unsafe<{ id: string }[]>(
    `SELECT id::text FROM ${table} WHERE id = ANY($1::bigint[]) ORDER BY id`,
    [ids as string[]] as never[],
  );
  return rows.map((row) => row.id);
}

async function state(clientId: string, alertKey: string, stateName: string, lastSeenDays: number) {
  await sql`
    INSERT INTO alert_states (client_id, scope, alert_key, episode, state, episode_started_at, last_event_at,
                              last_seen_at, last_notified_at)
    VALUES (${clientId}, '', ${alertKey}, 1, ${stateName}, now() - interval '30 days', now() - interval '30 days',
            now() - make_interval(days => ${lastSeenDays}), now() - interval '30 days')`;
}

test("old rows whose work is over go, with their attempts; pending, recent and still needed ones stay", async () => {
  const client = await tenant(sql, "retention");
  const rule = await client.rule();
  const endpoint = await client.endpoint(rule, "webhook", "https://example.com/kept");
  const ids = {
    oldSent: await client.notification([rule]),
    oldFailed: await client.notification([rule]),
    oldSilenced: await client.notification([rule]),
    oldRetrying: await client.notification([rule]),
    recentSent: await client.notification([rule]),
    oldButChangedLately: await client.notification([rule]),
    oldOfFiringEpisode: await client.notification([rule], { alertId: "am-firing" }),
  };
  await sql`UPDATE notifications SET status = 'SENT' WHERE id IN (${ids.oldSent}, ${ids.recentSent}, ${ids.oldButChangedLately})`;
  // The firing row of an episode that still fires (its state below): the sweep copies it.
  await sql`UPDATE notifications SET status = 'SENT', episode = 1 WHERE id = ${ids.oldOfFiringEpisode}`;
  await sql`UPDATE notifications SET status = 'FAILED' WHERE id = ${ids.oldFailed}`;
  await sql`UPDATE notifications SET status = 'RETRY' WHERE id = ${ids.oldRetrying}`;
  await sql`UPDATE notifications SET status = 'SILENCED', silenced_by = gen_random_uuid() WHERE id = ${ids.oldSilenced}`;
  for (const id of [ids.oldSent, ids.oldFailed, ids.oldSilenced, ids.oldRetrying, ids.oldOfFiringEpisode])
    await age(id, 30);
  await age(ids.oldButChangedLately, 30, 1);
  await sql`
    INSERT INTO deliveries (notification_id, endpoint_id, channel, outcome, latency_ms, attempt)
    VALUES (${ids.oldSent}, ${endpoint}, 'webhook', 'SUCCESS', 3, 1), (${ids.recentSent}, ${endpoint}, 'webhook', 'SUCCESS', 3, 1)`;
  // Alert states: resolved long ago with no row left (goes), the same with a row left (stays until
  // its row is gone), and firing (stays).
  const rowLeft = uniqueName("am");
  await sql`UPDATE notifications SET alert_id = ${rowLeft} WHERE id = ${ids.oldRetrying}`;
  await state(client.clientId, "am-gone", "resolved", 30);
  await state(client.clientId, rowLeft, "resolved", 30);
  await state(client.clientId, "am-firing", "firing", 30);
  // A group's old finished send goes with its attempts; the group stays (its rows wait, a row and a
  // send still name it).
  const groupKey = uniqueName("group");
  await sql`
    INSERT INTO notification_groups (group_key, client_id, labels, group_interval_ms, group_alerts_max, next_due_at, next_window)
    VALUES (${groupKey}, ${client.clientId}, '{}', 1000, 10, now(), 2)`;
  const sends = await sql<{ id: string }[]>`
    INSERT INTO group_sends (client_id, group_key, window_no, status, created_at, updated_at)
    VALUES (${client.clientId}, ${groupKey}, 0, 'SENT', now() - interval '30 days', now() - interval '30 days'),
           (${client.clientId}, ${groupKey}, 1, 'RETRY', now() - interval '30 days', now() - interval '30 days'),
           (${client.clientId}, ${groupKey}, 2, 'SENT', now() - interval '30 days', now() - interval '30 days')
    RETURNING id::text`;
  const [oldSend, retryingSend, sendOfKeptRow] = sends.map((s) => s.id) as [string, string, string];
  // A row still kept names the last: the send stays as long as it does.
  await sql`
    UPDATE notifications SET group_key = ${groupKey}, group_due_at = now(), group_send_id = ${sendOfKeptRow}
    WHERE id = ${ids.recentSent}`;
  await sql`
    INSERT INTO group_deliveries (group_send_id, endpoint_id, channel, alerts, outcome, latency_ms, attempt)
    VALUES (${oldSend}, ${endpoint}, 'webhook', 1, 'SUCCESS', 3, 1)`;

  // One row per table and statement at most: three old rows take three statements.
  expect(await deleteExpired(sql, retentionMs, 1)).toEqual({
    notifications: 1,
    groupSends: 1,
    alertStates: 1,
  });
  while (Object.values(await deleteExpired(sql, retentionMs, 1)).some((n) => n > 0));

  expect(await remaining("notifications", Object.values(ids))).toEqual(
    [ids.oldRetrying, ids.recentSent, ids.oldButChangedLately, ids.oldOfFiringEpisode].sort(
      (a, b) => Number(a) - Number(b),
    ),
  );
  const attempts = await sql`SELECT notification_id::text FROM deliveries WHERE endpoint_id = ${endpoint}`;
  expect(attempts.map((a) => a.notification_id)).toEqual([ids.recentSent]);
  const states =
    await sql`SELECT alert_key FROM alert_states WHERE client_id = ${client.clientId} ORDER BY 1`;
  expect(states.map((s) => s.alert_key)).toEqual(["am-firing", rowLeft].sort());
  expect(await remaining("group_sends", [oldSend, retryingSend, sendOfKeptRow])).toEqual([
    retryingSend,
    sendOfKeptRow,
  ]);
  expect(await sql`SELECT 1 FROM group_deliveries WHERE group_send_id = ${oldSend}`).toHaveLength(0);
  expect(await sql`SELECT 1 FROM notification_groups WHERE group_key = ${groupKey}`).toHaveLength(1);

  // Once its last row is over and gone, the state goes too.
  await sql`UPDATE notifications SET status = 'FAILED' WHERE id = ${ids.oldRetrying}`;
  await age(ids.oldRetrying, 30);
  await deleteExpired(sql, retentionMs, 10);
  await deleteExpired(sql, retentionMs, 10);
  expect(await sql`SELECT 1 FROM alert_states WHERE alert_key = ${rowLeft}`).toHaveLength(0);
});

/**
 * A group of the client as a window left it: `next_window` 3, due again `idleDays` ago, nothing
 * waiting unless `pending`; created `incarnationDays` ago, or before migration 000022 (null).
 */
async function group(
  clientId: string,
  fields: { key?: string; idleDays?: number; pending?: boolean; incarnationDays?: number | null } = {},
): Promise<string> {
  const { key = uniqueName("group"), idleDays = 30, pending = false, incarnationDays = 60 } = fields;
  await sql`
    INSERT INTO notification_groups (group_key, client_id, labels, group_interval_ms, group_alerts_max, next_due_at,
                                     next_window, has_pending, incarnation)
    VALUES (${key}, ${clientId}, '{}', 1000, 10, now() - make_interval(days => ${idleDays}), 3, ${pending},
            CASE WHEN ${incarnationDays}::int IS NOT NULL
              THEN (extract(epoch FROM now() - make_interval(days => ${incarnationDays}::int)) * 1000)::bigint END)`;
  return key;
}

async function groupsLeft(keys: readonly string[]): Promise<string[]> {
  const rows = await sql<{ group_key: string }[]>`
    SELECT group_key FROM notification_groups WHERE group_key = ANY(${keys as string[]}) ORDER BY group_key`;
  return rows.map((row) => row.group_key);
}

/** An old finished send of `groupKey`, as a window's outcome left it. */
async function oldSend(clientId: string, groupKey: string): Promise<string> {
  const [send] = await sql<{ id: string }[]>`
    INSERT INTO group_sends (client_id, group_key, window_no, status, created_at, updated_at)
    VALUES (${clientId}, ${groupKey}, 2, 'SENT', now() - interval '30 days', now() - interval '30 days')
    RETURNING id::text`;
  return (send as { id: string }).id;
}

/** Runs deleteIdleGroups over every idle group, a slice of `sliceSize` at a time; the groups deleted. */
async function idleGroupsPass(sliceSize: number): Promise<number> {
  let deleted = 0;
  let after: GroupCursor | null = null;
  do {
    const step = await deleteIdleGroups(sql, retentionMs, sliceSize, after);
    deleted += step.deleted;
    after = step.next;
  } while (after !== null);
  return deleted;
}

test("an idle group goes once no notification and no send names it; waiting, recent and named ones stay", async () => {
  const client = await tenant(sql, "retention-groups");
  const rule = await client.rule();
  const keys = {
    idle: await group(client.clientId),
    named: await group(client.clientId),
    waitingRow: await group(client.clientId),
    withSend: await group(client.clientId),
    waiting: await group(client.clientId, { pending: true }),
    recent: await group(client.clientId, { idleDays: 1 }),
  };
  // An old row of an episode that still fires, sent by an old window: the row keeps its send, the
  // send its group, and the sweep's later rows of the episode join that group.
  const firing = await client.notification([rule], { alertId: "am-grouped-firing" });
  const sendOfFiring = await oldSend(client.clientId, keys.named);
  await sql`
    UPDATE notifications SET status = 'SENT', episode = 1, group_key = ${keys.named}, group_due_at = now(),
                             group_send_id = ${sendOfFiring}
    WHERE id = ${firing}`;
  await age(firing, 30);
  await state(client.clientId, "am-grouped-firing", "firing", 30);
  // A row waiting for the group's next window (whatever the group's mark says).
  const waitingRow = await client.notification([rule], { alertId: "am-grouped-waiting" });
  await sql`UPDATE notifications SET group_key = ${keys.waitingRow}, group_due_at = now() WHERE id = ${waitingRow}`;
  // An old finished send nothing names: it goes first (it references its group), the group after.
  await oldSend(client.clientId, keys.withSend);

  // Slices of one group: the groups still named do not hide the ones behind them.
  expect(await idleGroupsPass(1)).toBe(1);
  const all = Object.values(keys);
  const kept = [keys.named, keys.waitingRow, keys.waiting, keys.recent];
  expect(await groupsLeft(all)).toEqual([...kept, keys.withSend].sort());
  expect(await deleteExpired(sql, retentionMs, 10)).toMatchObject({ groupSends: 1 });
  expect(await idleGroupsPass(1)).toBe(1);
  expect(await groupsLeft(all)).toEqual(kept.sort());
  expect(await sql`SELECT 1 FROM notifications WHERE id = ${firing}`).toHaveLength(1);
});

test("the job walks a whole pass over idle groups in one tick: groups still named do not hold back the rest", async () => {
  const client = await tenant(sql, "retention-pass");
  const rule = await client.rule();
  // Idle groups in next_due_at order, every other one named by a waiting row; slices of one group.
  const keys: { key: string; named: boolean }[] = [];
  for (let i = 0; i < 6; i++) {
    const key = await group(client.clientId, { idleDays: 40 - i });
    const named = i % 2 === 0;
    if (named) {
      const row = await client.notification([rule], { alertId: uniqueName("am-waiting") });
      await sql`UPDATE notifications SET group_key = ${key}, group_due_at = now() WHERE id = ${row}`;
    }
    keys.push({ key, named });
  }
  const job = startRetention(
    sql,
    { retentionMs, intervalMs: 2000, batchSizeMax: 1 },
    createLogger("retention-test"),
  );
  try {
    const deletable = keys.filter((k) => !k.named).map((k) => k.key);
    // One tick (the first is due after 2 s; the next not before 4 s).
    expect(await eventually(async () => (await groupsLeft(deletable)).length === 0, 3_500, 50)).toBe(true);
  } finally {
    await job.stop();
  }
  expect(await groupsLeft(keys.map((k) => k.key))).toEqual(
    keys
      .filter((k) => k.named)
      .map((k) => k.key)
      .sort(),
  );
});

test("a group recreated after retention deleted it is a new incarnation: window 0 again, under another key", async () => {
  const client = await tenant(sql, "retention-regroup");
  const rule = await client.rule();
  const settings = { groupBy: ["source"], groupWaitMs: 0, groupIntervalMs: 60_000, groupAlertsMax: 100 };
  // One group created before migration 000022 (no incarnation), one after.
  for (const incarnationDays of [null, 60]) {
    const source = uniqueName("src");
    const key = groupKey(client.clientId, settings, { source });
    await group(client.clientId, { key, incarnationDays });
    const [old] = await sql<{ incarnation: string | null }[]>`
      SELECT incarnation::text FROM notification_groups WHERE group_key = ${key}`;
    const oldIncarnation = old?.incarnation == null ? null : Number(old.incarnation);
    expect(oldIncarnation === null).toBe(incarnationDays === null);
    await idleGroupsPass(10);
    expect(await groupsLeft([key])).toEqual([]);

    // A new alert of the group: the aggregator's insert recreates it (openGroups).
    await insertNotifications(sql, [
      groupedRow(client.clientId, rule, uniqueName("alert"), source, settings),
    ]);
    const [recreated] = await sql<{ incarnation: string | null; next_window: number }[]>`
      SELECT incarnation::text, next_window FROM notification_groups WHERE group_key = ${key}`;
    expect(recreated?.next_window).toBe(0);
    expect(recreated?.incarnation).not.toBeNull();
    const incarnation = Number(recreated?.incarnation);
    expect(Math.abs(incarnation - Date.now())).toBeLessThan(60_000);
    expect(groupIdempotencyKey(key, 0, incarnation)).not.toBe(groupIdempotencyKey(key, 0, oldIncarnation));
  }
});

const stages: Awaited<ReturnType<typeof startAggregator>>[] = [];
afterAll(async () => {
  for (const stage of stages) expect(await stopStage(stage)).toBe(0);
});

test("the aggregator deletes by itself what its RETENTION_DAYS let go, and keeps the rest", async () => {
  const client = await tenant(sql, "retention-stage");
  const rule = await client.rule();
  const [old, recent] = [await client.notification([rule]), await client.notification([rule])];
  await sql`UPDATE notifications SET status = 'SENT' WHERE id IN (${old}, ${recent})`;
  await age(old, 15);
  await age(recent, 13);
  stages.push(
    await startAggregator(db, await aggregatorTopics("retention"), { RETENTION_INTERVAL_MS: "100" }),
  );
  expect(await eventually(async () => (await remaining("notifications", [old])).length === 0, 15_000)).toBe(
    true,
  );
  expect(await remaining("notifications", [recent])).toEqual([recent]);
});
