/**
 * A dispatch longer than the lease: one sender holds eight deliveries (group windows, or plain
 * notifications) for one endpoint that takes its POSTs one at a time and answers each after 1 s,
 * under a 3 s lease, while a second sender waits for leases to expire. The first must keep its
 * leases until it has delivered and recorded everything: each Idempotency-Key reaches the receiver
 * once (Slack and email would show a repeat), and every alert in exactly one delivery.
 */
import { afterAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, stopStage } from "../../harness/stages.ts";
import { insertNotifications, type NotificationInput } from "../../src/adapters/notification-store.ts";
import { HttpSink } from "../channels/sink.ts";
import { groupedRow, rowsById, senderTopic, settled, startSender, tenant } from "./support.ts";

const db = useTestSchema("sender_group_lease");
const { sql } = db;
const stages: StageProcess[] = [];
/** One POST at a time to the endpoint: the first sender's dispatch takes 8 s, its lease 3 s. */
const slowEndpointEnv = { LEASE_MS: "3000", HTTP_TIMEOUT_MS: "1500", ENDPOINT_CONCURRENCY_MAX: "1" };

function slowSink(bodyIds: (body: string) => string[]) {
  const posts: { key: string; notificationIds: string[] }[] = [];
  const sink = new HttpSink(async (request) => {
    posts.push({ key: request.headers.get("idempotency-key") ?? "", notificationIds: bodyIds(request.body) });
    await Bun.sleep(1000);
    return new Response("ok");
  });
  return { sink, posts };
}

/** A tenant with one slow webhook and eight plain notifications due now (the scheduler claims them). */
async function plainDueNow(prefix: string) {
  const slow = slowSink((body) => [(JSON.parse(body) as { notificationId: string }).notificationId]);
  const t = await tenant(sql, prefix);
  const ruleId = await t.rule();
  await t.endpoint(ruleId, "webhook", slow.sink.url("/slow"));
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) ids.push(await t.notification([ruleId]));
  await sql`UPDATE notifications SET next_attempt_at = now() WHERE id = ANY(${ids}::bigint[])`;
  return { ...slow, ids };
}

/** Until every row is SENT; then, a repeat in flight given time to arrive, clean stops and each key once. */
async function expectAllSentOnce(
  posts: readonly { key: string; notificationIds: string[] }[],
  ids: string[],
  keys: number,
) {
  expect(await settled(sql, ids, ["SENT"], 30_000)).toBe(true);
  await Bun.sleep(1500); // a repeat in flight would arrive now
  const exits = await Promise.all(stages.splice(0).map((stage) => stopStage(stage)));
  expect(exits.every((code) => code === 0)).toBe(true);
  expectEachOnce(posts, ids, keys);
}

/** Each Idempotency-Key once, `keys` of them, and every id in exactly one POST. */
function expectEachOnce(
  posts: readonly { key: string; notificationIds: string[] }[],
  ids: string[],
  keys: number,
) {
  const perKey = new Map<string, number>();
  for (const post of posts) perKey.set(post.key, (perKey.get(post.key) ?? 0) + 1);
  expect([...perKey.entries()].filter(([, count]) => count > 1)).toEqual([]);
  expect(perKey.size).toBe(keys);
  const carried = countDeliveries(
    ids,
    posts.flatMap((post) => post.notificationIds),
  );
  expect(carried.lost).toEqual([]);
  expect(carried.duplicated).toEqual([]);
  expect(carried.unexpected).toEqual([]);
}

afterAll(() => {
  for (const stage of stages) if (stage.process.exitCode === null) stage.process.kill("SIGKILL");
});

test("a pass longer than the lease: every group window reaches the receiver once", async () => {
  const { sink, posts } = slowSink(
    (body) => (JSON.parse(body) as { notificationIds: string[] }).notificationIds,
  );
  try {
    const t = await tenant(sql, "grp-lease");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url("/slow"));
    const settings = { groupBy: ["source"], groupWaitMs: 0, groupIntervalMs: 600_000, groupAlertsMax: 100 };
    const groupsCount = 8;
    const rows: NotificationInput[] = [];
    for (let i = 0; i < groupsCount * 3; i++)
      rows.push(groupedRow(t.clientId, ruleId, `lease-${i}`, `svc-${i % groupsCount}`, settings));
    await insertNotifications(sql, rows);
    const ids = (
      await sql<{ id: string }[]>`SELECT id::text FROM notifications WHERE client_id = ${t.clientId}`
    ).map((r) => r.id);

    stages.push(await startSender(db, await senderTopic("grp-lease-a"), slowEndpointEnv));
    const opened = async () =>
      (
        await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM group_sends WHERE client_id = ${t.clientId}`
      )[0]?.n === groupsCount;
    expect(await eventually(opened, 20_000)).toBe(true);
    // The second sender takes every send whose lease it finds expired.
    stages.push(await startSender(db, await senderTopic("grp-lease-b"), slowEndpointEnv));

    await expectAllSentOnce(posts, ids, groupsCount);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("a dispatch longer than the lease: every plain notification reaches the receiver once", async () => {
  const { sink, posts, ids } = await plainDueNow("plain-lease");
  try {
    stages.push(await startSender(db, await senderTopic("plain-lease-a"), slowEndpointEnv));
    const claimed = async () => {
      const rows = [...(await rowsById(sql, ids)).values()];
      return rows.length === ids.length && rows.every((row) => row.status !== "RECEIVED");
    };
    expect(await eventually(claimed, 20_000)).toBe(true);
    stages.push(await startSender(db, await senderTopic("plain-lease-b"), slowEndpointEnv));

    await expectAllSentOnce(posts, ids, ids.length);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("a sender stopped mid-dispatch records what it sent, hands over what it did not start, repeats nothing", async () => {
  const { sink, posts, ids } = await plainDueNow("stop-lease");
  try {
    const first = await startSender(db, await senderTopic("stop-lease-a"), slowEndpointEnv);
    stages.push(first);
    expect(await eventually(() => posts.length >= 2, 20_000)).toBe(true);
    expect(await stopStage(first)).toBe(0);
    stages.splice(stages.indexOf(first), 1);
    // Nothing is left under the stopped sender's lease: each row was recorded, sent or to retry.
    const left = [...(await rowsById(sql, ids)).values()];
    expect(left.filter((row) => row.status === "SENDING")).toEqual([]);
    const retried = left.filter((row) => row.status === "RETRY");
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.every((row) => row.last_error?.startsWith("not sent") === true)).toBe(true);

    stages.push(await startSender(db, await senderTopic("stop-lease-b"), slowEndpointEnv));
    await expectAllSentOnce(posts, ids, ids.length);
  } finally {
    await sink.stop();
  }
}, 60_000);
