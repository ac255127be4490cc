/**
 * Grouping at delivery through the real aggregator and sender processes, a real webhook sink and
 * AlertMatched records carrying a policy (as the evaluator writes them): one POST per group window and
 * endpoint with every alert of the window in it, group_alerts_max truncation counted, later alerts of
 * a group in the next group_interval window, a kill -9 of the sender mid-group that neither loses
 * an alert nor sends a group window under two keys or with two contents, a window larger than its
 * receiver accepts bounded rather than refused, and an alert firing and resolved within one window
 * listed once.
 */
import { afterAll, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, stopStage } from "../../harness/stages.ts";
import { AlertStatus, DeliveryPolicySchema } from "../../src/gen/alerting/v1/alert_pb.ts";
import { Producer } from "../../src/kafka/index.ts";
import { aggregatorTopics, alertMatched, startAggregator } from "../aggregator/support.ts";
import { HttpSink, type ReceivedRequest } from "../channels/sink.ts";
import { settled, startSender, tenant } from "./support.ts";

const db = useTestSchema("sender_grouping");
const { sql } = db;
const producer = new Producer({ brokers, logger: quiet });
const stages: StageProcess[] = [];

afterAll(async () => {
  for (const stage of stages) if (stage.process.exitCode === null) stage.process.kill("SIGKILL");
  await producer.close();
});

interface GroupPost {
  path: string;
  atMs: number;
  key: string;
  body: {
    version: string;
    groupKey: string;
    status: string;
    groupLabels: Record<string, string>;
    truncatedAlerts: number;
    truncatedNotifications: number;
    windowNo: number;
    alerts: { status: string; labels: Record<string, string>; notificationId: string; alertId: string }[];
    notificationIds: string[];
    notificationId?: string;
  };
}

function parse(request: ReceivedRequest): GroupPost {
  return {
    path: request.path,
    atMs: Date.now(),
    key: request.headers.get("idempotency-key") ?? "",
    body: JSON.parse(request.body) as GroupPost["body"],
  };
}

/** A receiver keeping every group POST it gets, answered by `answer` (200 "ok" unless given). */
function recordingSink(answer: (post: GroupPost) => Response | Promise<Response> = () => new Response("ok")) {
  const posts: GroupPost[] = [];
  const sink = new HttpSink((request) => {
    const post = parse(request);
    posts.push(post);
    return answer(post);
  });
  return { posts, sink };
}

/** An aggregator and a sender on this test's topics; the sender reads what the aggregator announces. */
async function pipeline(prefix: string, senderEnv: Record<string, string> = {}) {
  const topics = await aggregatorTopics(prefix);
  stages.push(await startAggregator(db, topics));
  const senderTopic = { topic: topics.output, group: `${uniqueName(prefix)}-sender` };
  const sender = await startSender(db, senderTopic, senderEnv);
  stages.push(sender);
  return { topics, senderTopic, sender };
}

const policy = (fields: { groupWaitMs: number; groupIntervalMs: number; groupAlertsMax: number }) =>
  create(DeliveryPolicySchema, {
    groupBy: ["source"],
    groupWaitMs: BigInt(fields.groupWaitMs),
    groupIntervalMs: BigInt(fields.groupIntervalMs),
    groupAlertsMax: fields.groupAlertsMax,
  });

async function notificationIds(
  clientId: string,
): Promise<{ id: string; alert_id: string; send: string | null }[]> {
  return sql<{ id: string; alert_id: string; send: string | null }[]>`
    SELECT id::text, alert_id, group_send_id::text AS send FROM notifications WHERE client_id = ${clientId} ORDER BY id`;
}

/** Waits until the client has `count` rows and every one of them is SENT; returns them. */
async function allSent(clientId: string, count: number, timeoutMs = 20_000) {
  expect(await eventually(async () => (await notificationIds(clientId)).length === count, 20_000)).toBe(true);
  const rows = await notificationIds(clientId);
  expect(
    await settled(
      sql,
      rows.map((r) => r.id),
      ["SENT"],
      timeoutMs,
    ),
  ).toBe(true);
  return rows;
}

test("N alerts in K groups: K POSTs per endpoint, each alert in one, truncation counted, next window later", async () => {
  const { posts, sink } = recordingSink();
  try {
    const t = await tenant(sql, "grp");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url("/a"));
    await t.endpoint(ruleId, "webhook", sink.url("/b"));
    const { topics } = await pipeline("grp");
    const groupsCount = 4;
    const perGroup = 10;
    const intervalMs = 2000;
    const grouping = policy({ groupWaitMs: 1500, groupIntervalMs: intervalMs, groupAlertsMax: 4 });
    const records = [];
    for (let i = 0; i < groupsCount * perGroup; i++) {
      records.push({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({
          clientId: t.clientId,
          ruleIds: [ruleId],
          alertId: `g-${i}`,
          source: `svc-${i % groupsCount}`,
          policy: grouping,
        }),
      });
    }
    // Ungrouped alerts of the same client keep one message each.
    for (let i = 0; i < 3; i++) {
      records.push({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({ clientId: t.clientId, ruleIds: [ruleId], alertId: `u-${i}` }),
      });
    }
    await producer.send(records);
    expect(
      await eventually(async () => (await notificationIds(t.clientId)).length === records.length, 20_000),
    ).toBe(true);
    const ids = (await notificationIds(t.clientId)).map((r) => r.id);
    expect(await settled(sql, ids, ["SENT"], 20_000)).toBe(true);
    await Bun.sleep(300); // a stray extra POST would show up now
    const rows = await notificationIds(t.clientId);

    const grouped = rows.filter((r) => r.alert_id.startsWith("g-"));
    const ungrouped = rows.filter((r) => r.alert_id.startsWith("u-"));
    for (const path of ["/a", "/b"]) {
      const atPath = posts.filter((p) => p.path === path);
      const groupPosts = atPath.filter((p) => p.body.version === "4");
      expect(groupPosts).toHaveLength(groupsCount);
      expect(new Set(groupPosts.map((p) => p.key)).size).toBe(groupsCount);
      for (const post of groupPosts) {
        const [group] = await sql<{ incarnation: string }[]>`
          SELECT incarnation::text FROM notification_groups WHERE group_key = ${post.body.groupKey}`;
        expect(post.key).toBe(`group-${post.body.groupKey}-${group?.incarnation}-0`);
        expect(post.body.windowNo).toBe(0);
        expect(post.body.status).toBe("firing");
        expect(post.body.notificationIds).toHaveLength(perGroup);
        expect(post.body.alerts).toHaveLength(4);
        expect(post.body.truncatedAlerts).toBe(perGroup - 4);
        for (const alert of post.body.alerts)
          expect(alert.labels.source).toBe(post.body.groupLabels.source as string);
      }
      const carried = countDeliveries(
        grouped.map((r) => r.id),
        groupPosts.flatMap((p) => p.body.notificationIds),
      );
      expect(carried.lost).toEqual([]);
      expect(carried.duplicated).toEqual([]);
      expect(carried.unexpected).toEqual([]);
      const single = atPath.filter((p) => p.body.version === undefined);
      expect(single.map((p) => p.body.notificationId).sort()).toEqual(ungrouped.map((r) => r.id).sort());
    }
    // Each row names the group send that carried it: one send per group.
    expect(new Set(grouped.map((r) => r.send)).size).toBe(groupsCount);
    expect(ungrouped.every((r) => r.send === null)).toBe(true);

    // Later alerts of one group wait for its next window, group_interval after the first.
    const firstSentMs = Math.min(
      ...posts.filter((p) => p.body.groupLabels?.source === "svc-0").map((p) => p.atMs),
    );
    const later = [0, 1, 2].map((i) => ({
      topic: topics.input,
      key: t.clientId,
      value: alertMatched({
        clientId: t.clientId,
        ruleIds: [ruleId],
        alertId: `later-${i}`,
        source: "svc-0",
        policy: grouping,
      }),
    }));
    await producer.send(later);
    expect(
      await eventually(async () => (await notificationIds(t.clientId)).length === records.length + 3, 20_000),
    ).toBe(true);
    const laterIds = (await notificationIds(t.clientId))
      .filter((r) => r.alert_id.startsWith("later-"))
      .map((r) => r.id);
    expect(await settled(sql, laterIds, ["SENT"], 20_000)).toBe(true);
    await Bun.sleep(300);
    for (const path of ["/a", "/b"]) {
      const second = posts.filter((p) => p.path === path && p.body.windowNo === 1);
      expect(second).toHaveLength(1);
      const [post] = second as [GroupPost];
      expect(post.body.groupLabels).toEqual({ source: "svc-0" });
      expect(post.body.notificationIds.sort()).toEqual(laterIds.sort());
      expect(post.atMs - firstSentMs).toBeGreaterThanOrEqual(intervalMs - 100);
    }
    // Senders drive every due group of the database: none of this test's may run into the next.
    expect(await Promise.all(stages.splice(0).map((stage) => stopStage(stage)))).toEqual([0, 0]);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("kill -9 of the sender mid-group: nothing lost, each window under one key with one content", async () => {
  const { posts, sink } = recordingSink(async () => {
    await Bun.sleep(2000);
    return new Response("ok");
  });
  try {
    const t = await tenant(sql, "grp-crash");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url("/crash"));
    const env = { LEASE_MS: "5000", HTTP_TIMEOUT_MS: "2500" };
    const { topics, senderTopic, sender } = await pipeline("grp-crash", env);
    const groupsCount = 6;
    const perGroup = 5;
    const grouping = policy({ groupWaitMs: 300, groupIntervalMs: 1000, groupAlertsMax: 100 });
    await producer.send(
      Array.from({ length: groupsCount * perGroup }, (_, i) => ({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({
          clientId: t.clientId,
          ruleIds: [ruleId],
          alertId: `c-${i}`,
          source: `svc-${i % groupsCount}`,
          policy: grouping,
        }),
      })),
    );
    // Group POSTs are in flight (the sink holds its answers for 2 s): kill the sender now.
    expect(await eventually(() => posts.length > 0, 20_000, 5)).toBe(true);
    await Bun.sleep(200);
    sender.process.kill("SIGKILL");
    await sender.process.exited;
    const inFlightAtKill = new Set(posts.map((p) => p.key));

    stages.push(await startSender(db, senderTopic, env));
    const rows = await allSent(t.clientId, groupsCount * perGroup, 30_000);
    await Bun.sleep(2500); // a stray repeat would show up now
    // The aggregator, the killed sender and its successor: the last two must not outlive the test.
    const [aggregator, , second] = stages.splice(0) as [StageProcess, StageProcess, StageProcess];
    expect([await stopStage(second), await stopStage(aggregator)]).toEqual([0, 0]);

    // Every alert in exactly one window (one distinct Idempotency-Key), whatever was repeated.
    const contentByKey = new Map<string, string>();
    for (const post of posts) {
      const content = JSON.stringify([...post.body.notificationIds].sort());
      expect(contentByKey.get(post.key) ?? content).toBe(content);
      contentByKey.set(post.key, content);
    }
    const carried = countDeliveries(
      rows.map((r) => r.id),
      [...contentByKey.values()].flatMap((content) => JSON.parse(content) as string[]),
    );
    expect(carried.lost).toEqual([]);
    expect(carried.duplicated).toEqual([]);
    expect(carried.unexpected).toEqual([]);
    const postsPerKey = new Map<string, number>();
    for (const post of posts) postsPerKey.set(post.key, (postsPerKey.get(post.key) ?? 0) + 1);
    const repeated = new Set([...postsPerKey].filter(([, n]) => n > 1).map(([key]) => key));
    console.log(
      `grouping crash test: ${JSON.stringify({ inFlightAtKill: inFlightAtKill.size, posts: posts.length, windows: contentByKey.size, repeated: repeated.size })}`,
    );
    expect(inFlightAtKill.size).toBeGreaterThan(0);
    // Exactly the windows the dead sender had in flight were sent again (once), under their own keys.
    expect(repeated).toEqual(inFlightAtKill);
    expect([...postsPerKey.values()].every((n) => n <= 2)).toBe(true);
    const sends = await sql<{ status: string; attempts: number }[]>`
      SELECT status, attempts FROM group_sends WHERE client_id = ${t.clientId}`;
    expect(sends.every((s) => s.status === "SENT")).toBe(true);
    expect(sends.length).toBe(contentByKey.size);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("a group window failing on one endpoint is retried there only, same key and alerts; A's stays one POST", async () => {
  let failuresLeft = 2;
  const { posts, sink } = recordingSink((post) =>
    post.path === "/flaky" && failuresLeft-- > 0 ? new Response("busy", { status: 503 }) : new Response("ok"),
  );
  try {
    const t = await tenant(sql, "grp-retry");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url("/steady"));
    await t.endpoint(ruleId, "webhook", sink.url("/flaky"));
    const { topics } = await pipeline("grp-retry");
    const grouping = policy({ groupWaitMs: 200, groupIntervalMs: 1000, groupAlertsMax: 100 });
    await producer.send(
      Array.from({ length: 8 }, (_, i) => ({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({
          clientId: t.clientId,
          ruleIds: [ruleId],
          alertId: `r-${i}`,
          source: "svc",
          policy: grouping,
        }),
      })),
    );
    const ids = (await allSent(t.clientId, 8)).map((r) => r.id);
    await Bun.sleep(300);

    const steady = posts.filter((p) => p.path === "/steady");
    const flaky = posts.filter((p) => p.path === "/flaky");
    expect(steady).toHaveLength(1);
    expect(flaky).toHaveLength(3);
    expect(new Set(posts.map((p) => p.key)).size).toBe(1);
    expect(new Set(posts.map((p) => JSON.stringify(p.body.notificationIds))).size).toBe(1);
    expect([...(steady[0]?.body.notificationIds ?? [])].sort()).toEqual([...ids].sort());
    const [send] = await sql<{ status: string; attempts: number }[]>`
      SELECT status, attempts FROM group_sends WHERE client_id = ${t.clientId}`;
    expect(send).toEqual({ status: "SENT", attempts: 3 });
    const outcomes = await sql<{ outcome: string; alerts: number }[]>`
      SELECT d.outcome, d.alerts FROM group_deliveries d JOIN group_sends s ON s.id = d.group_send_id
      WHERE s.client_id = ${t.clientId} ORDER BY d.id`;
    expect(outcomes.filter((o) => o.outcome === "SUCCESS")).toHaveLength(2);
    expect(outcomes.filter((o) => o.outcome === "RETRYABLE")).toHaveLength(2);
    expect(outcomes.every((o) => o.alerts === 8)).toBe(true);
    expect(await Promise.all(stages.splice(0).map((stage) => stopStage(stage)))).toEqual([0, 0]);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("one group over two rules: each endpoint gets only its rules' alerts; a shared URL one message", async () => {
  const { posts, sink } = recordingSink();
  try {
    const t = await tenant(sql, "grp-route");
    const [r1, r2] = [await t.rule(), await t.rule()];
    await t.endpoint(r1, "webhook", sink.url("/r1"));
    await t.endpoint(r2, "webhook", sink.url("/r2"));
    await t.endpoint(r1, "webhook", sink.url("/shared"));
    await t.endpoint(r2, "webhook", sink.url("/shared"));
    const { topics } = await pipeline("grp-route");
    const grouping = policy({ groupWaitMs: 300, groupIntervalMs: 1000, groupAlertsMax: 100 });
    const matched = { a: [r1], b: [r2], c: [r1, r2] } as Record<string, string[]>;
    await producer.send(
      Object.entries(matched).map(([alertId, ruleIds]) => ({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({ clientId: t.clientId, ruleIds, alertId, source: "svc", policy: grouping }),
      })),
    );
    const rows = await allSent(t.clientId, 3);
    await Bun.sleep(300);
    const idOf = (alertId: string) => rows.find((r) => r.alert_id === alertId)?.id as string;
    const carried = (path: string) =>
      posts.filter((p) => p.path === path).map((p) => [...p.body.notificationIds].sort());
    expect(carried("/r1")).toEqual([[idOf("a"), idOf("c")].sort()]);
    expect(carried("/r2")).toEqual([[idOf("b"), idOf("c")].sort()]);
    expect(carried("/shared")).toEqual([[idOf("a"), idOf("b"), idOf("c")].sort()]);
    expect(new Set(posts.map((p) => p.key)).size).toBe(1);
    expect(await Promise.all(stages.splice(0).map((stage) => stopStage(stage)))).toEqual([0, 0]);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("one group over three rules: each row's status is its own endpoints', not the message's", async () => {
  const { posts, sink } = recordingSink((post) =>
    post.path === "/gone" ? new Response("no such hook", { status: 404 }) : new Response("ok"),
  );
  try {
    const t = await tenant(sql, "grp-own");
    const [r1, r2, r3] = [await t.rule(), await t.rule(), await t.rule()];
    await t.endpoint(r1, "webhook", sink.url("/ok"));
    await t.endpoint(r2, "webhook", sink.url("/gone"));
    await t.endpoint(r3, "webhook", sink.url("/off"), { enabled: false });
    const { topics } = await pipeline("grp-own");
    const grouping = policy({ groupWaitMs: 300, groupIntervalMs: 1000, groupAlertsMax: 100 });
    const matched = { a: [r1], b: [r2], c: [r3], d: [r1, r2] } as Record<string, string[]>;
    await producer.send(
      Object.entries(matched).map(([alertId, ruleIds]) => ({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({ clientId: t.clientId, ruleIds, alertId, source: "svc", policy: grouping }),
      })),
    );
    expect(await eventually(async () => (await notificationIds(t.clientId)).length === 4, 20_000)).toBe(true);
    const ids = (await notificationIds(t.clientId)).map((r) => r.id);
    expect(await settled(sql, ids, ["SENT", "FAILED"], 20_000)).toBe(true);
    const rows = await sql<{ alert_id: string; status: string; last_error: string | null }[]>`
      SELECT alert_id, status, last_error FROM notifications WHERE client_id = ${t.clientId} ORDER BY alert_id`;
    // a reached its endpoint; b and d were refused at theirs (d as an ungrouped row with a refusal
    // would be); c's rule has no enabled endpoint, so nothing carried it.
    expect(rows.map((r) => [r.alert_id, r.status])).toEqual([
      ["a", "SENT"],
      ["b", "FAILED"],
      ["c", "FAILED"],
      ["d", "FAILED"],
    ]);
    expect(rows[2]?.last_error).toBe("no enabled endpoint");
    const carriedToOk = posts
      .filter((p) => p.path === "/ok")
      .flatMap((p) => p.body.alerts.map((a) => a.alertId));
    expect(carriedToOk.sort()).toEqual(["a", "d"]);
    expect(posts.filter((p) => p.path === "/off")).toHaveLength(0);
    expect(await Promise.all(stages.splice(0).map((stage) => stopStage(stage)))).toEqual([0, 0]);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("a window larger than its receiver accepts is bounded, not refused: every alert listed or counted", async () => {
  // The receiver refuses bodies over 16 KiB as nginx or a body parser would; the window is ~400 KB.
  const limitBytes = 16 * 1024;
  const posts: GroupPost[] = [];
  const answers: number[] = [];
  const sink = new HttpSink((request) => {
    const status = Buffer.byteLength(request.body) > limitBytes ? 413 : 200;
    answers.push(status);
    if (status === 200) posts.push(parse(request));
    return new Response(status === 200 ? "ok" : "too large", { status });
  });
  try {
    const t = await tenant(sql, "grp-bytes");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url("/bounded"));
    const { topics } = await pipeline("grp-bytes", { GROUP_BODY_BYTES_MAX: String(limitBytes) });
    const count = 300;
    const grouping = policy({ groupWaitMs: 1500, groupIntervalMs: 1000, groupAlertsMax: 1000 });
    await producer.send(
      Array.from({ length: count }, (_, i) => ({
        topic: topics.input,
        key: t.clientId,
        value: alertMatched({
          clientId: t.clientId,
          ruleIds: [ruleId],
          alertId: `b-${i}`,
          source: "svc",
          context: { host: `db-${i}`, note: "x".repeat(1000) },
          policy: grouping,
        }),
      })),
    );
    const rows = await allSent(t.clientId, count);
    await Bun.sleep(300);

    expect(answers.filter((status) => status !== 200)).toEqual([]);
    expect(posts.length).toBeGreaterThan(0);
    for (const post of posts) {
      expect(post.body.version).toBe("4");
      expect(post.body.alerts.length).toBeGreaterThan(0);
      expect(post.body.truncatedAlerts).toBeGreaterThan(0);
      // The receiver learns the window's counts: listed plus truncated.
      expect(post.body.alerts.length + post.body.truncatedAlerts).toBe(
        post.body.notificationIds.length + post.body.truncatedNotifications,
      );
    }
    const carried = posts.reduce((sum, p) => sum + p.body.alerts.length + p.body.truncatedAlerts, 0);
    expect(carried).toBe(count);
    // Every row is recorded as carried by its window, listed in the body or not.
    const sends = await sql<{ alerts: number; outcome: string }[]>`
      SELECT d.alerts, d.outcome FROM group_deliveries d JOIN group_sends s ON s.id = d.group_send_id
      WHERE s.client_id = ${t.clientId}`;
    expect(sends.every((d) => d.outcome === "SUCCESS")).toBe(true);
    expect(sends.reduce((sum, d) => sum + d.alerts, 0)).toBe(count);
    expect(new Set(rows.map((r) => r.send)).size).toBe(posts.length);
    expect(await Promise.all(stages.splice(0).map((stage) => stopStage(stage)))).toEqual([0, 0]);
  } finally {
    await sink.stop();
  }
}, 60_000);

test("alerts firing and resolved within one window: each listed once, resolved, the window resolved", async () => {
  const { posts, sink } = recordingSink();
  try {
    const t = await tenant(sql, "grp-once");
    const ruleId = await t.rule();
    await t.endpoint(ruleId, "webhook", sink.url("/once"));
    const { topics } = await pipeline("grp-once");
    const grouping = policy({ groupWaitMs: 1500, groupIntervalMs: 1000, groupAlertsMax: 100 });
    const startedMs = Date.now() - 10_000;
    const submission = (alertId: string, status: AlertStatus) => ({
      topic: topics.input,
      key: t.clientId,
      value: alertMatched({
        clientId: t.clientId,
        scope: `client:${t.clientId}`,
        ruleIds: [ruleId],
        alertId,
        source: "svc",
        status,
        eventTimeUnixMs: BigInt(startedMs),
        endsAtUnixMs: BigInt(status === AlertStatus.RESOLVED ? Date.now() - 1000 : Date.now() + 600_000),
        policy: grouping,
      }),
    });
    await producer.send([submission("am-x", AlertStatus.FIRING), submission("am-y", AlertStatus.FIRING)]);
    await producer.send([submission("am-x", AlertStatus.RESOLVED), submission("am-y", AlertStatus.RESOLVED)]);
    const rows = await allSent(t.clientId, 4);
    await Bun.sleep(300);

    // Within group_wait the four rows make one window.
    expect(new Set(rows.map((r) => r.send)).size).toBe(1);
    expect(posts).toHaveLength(1);
    const [post] = posts as [GroupPost];
    const kinds = await sql<{ id: string; alert_id: string; kind: string }[]>`
      SELECT id::text, alert_id, kind FROM notifications WHERE client_id = ${t.clientId} ORDER BY id`;
    const resolvedId = (alertId: string) =>
      kinds.find((r) => r.alert_id === alertId && r.kind === "resolved")?.id as string;
    expect(post.body.status).toBe("resolved");
    expect(post.body.alerts.map((a) => [a.alertId, a.status, a.notificationId])).toEqual([
      ["am-x", "resolved", resolvedId("am-x")],
      ["am-y", "resolved", resolvedId("am-y")],
    ]);
    expect(post.body.truncatedAlerts).toBe(0);
    // Both rows of each alert are carried by the window.
    expect([...post.body.notificationIds].sort()).toEqual(kinds.map((r) => r.id).sort());
    expect(await Promise.all(stages.splice(0).map((stage) => stopStage(stage)))).toEqual([0, 0]);
  } finally {
    await sink.stop();
  }
}, 60_000);
