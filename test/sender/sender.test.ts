/**
 * The sender stage as a real process against the real broker and Postgres, delivering to an HTTP
 * sink and a real SMTP server on loopback. Each test inserts its own rows, produces NotificationReady
 * records to its own topic and runs its own sender (the scheduler re-drives any due row of the whole
 * table, so senders with different settings never run at the same time).
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, quiet } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { type StageProcess, stopStage } from "../../harness/stages.ts";
import { webhookSignature } from "../../src/channels/webhook.ts";
import { Producer } from "../../src/kafka/index.ts";
import { HttpSink, type ReceivedRequest } from "../channels/sink.ts";
import { queuedReply, type ReceivedMail, startSmtpSink } from "../channels/smtp-sink.ts";
import {
  deliveriesOf,
  groupSettled,
  readyRecord,
  rowOf,
  rowsById,
  senderTopic,
  settled,
  startSender,
  tenant,
} from "./support.ts";

const db = useTestSchema("sender");
const { sql } = db;
let producer: Producer;
let sink: HttpSink;
let running: StageProcess[] = [];

beforeAll(() => {
  producer = new Producer({ brokers, logger: quiet });
  sink = new HttpSink();
});

/** Each test's senders stop with it, cleanly (SIGTERM, exit code 0). */
afterEach(async () => {
  const stages = running;
  running = [];
  const exitCodes = await Promise.all(stages.map((stage) => stopStage(stage)));
  sink.answer(() => new Response("ok"));
  expect(exitCodes).toEqual(stages.map(() => 0));
});

afterAll(async () => {
  await producer.close();
  await sink.stop();
});

async function sender(prefix: string, env: Record<string, string> = {}) {
  const topic = await senderTopic(prefix);
  const stage = await startSender(db, topic, env);
  running.push(stage);
  return { topic: topic.topic, stage };
}

/** Requests to one path, each with the time it arrived. */
function recorder(path: string) {
  const arrivals: { atMs: number; request: ReceivedRequest }[] = [];
  return {
    arrivals,
    record(request: ReceivedRequest) {
      if (request.path === path) arrivals.push({ atMs: Date.now(), request });
    },
  };
}

const requestsTo = (path: string) => sink.received.filter((r) => r.path === path);

test("a webhook is delivered once, with the documented payload and headers, and recorded", async () => {
  const t = await tenant(sql, "snd-webhook");
  const ruleId = await t.rule();
  const path = `/webhook/${t.clientId}`;
  const endpointId = await t.endpoint(ruleId, "webhook", sink.url(path), { secret: "s3cret" });
  const id = await t.notification([ruleId], {
    alertId: "cpu-1",
    context: { host: "db-1", note: "<b>&</b>" },
  });
  sink.answer(async () => {
    await Bun.sleep(30);
    return new Response("ok");
  });
  const { topic } = await sender("snd-webhook");
  await producer.send([readyRecord(topic, id, t.clientId)]);

  expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
  await Bun.sleep(300);
  const requests = requestsTo(path);
  expect(requests).toHaveLength(1);
  const request = requests[0] as ReceivedRequest;
  expect(request.method).toBe("POST");
  expect(request.headers.get("content-type")).toBe("application/json");
  expect(request.headers.get("idempotency-key")).toBe(id);
  expect(JSON.parse(request.body)).toEqual({
    notificationId: id,
    clientId: t.clientId,
    alertId: "cpu-1",
    severity: "HIGH",
    source: "billing-api",
    name: "cpu-high",
    context: { host: "db-1", note: "<b>&</b>" },
    ruleIds: [ruleId],
    eventTime: "2025-03-01T12:00:00.000Z",
    status: "firing",
    kind: "firing",
  });
  const timestamp = request.headers.get("x-alerting-timestamp") ?? "";
  expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(30);
  expect(request.headers.get("x-alerting-signature")).toBe(
    `sha256=${webhookSignature("s3cret", timestamp, request.body)}`,
  );

  const row = await rowOf(sql, id);
  expect(row).toMatchObject({
    status: "SENT",
    attempts: 1,
    last_error: null,
    lease_until: null,
    next_attempt_at: null,
  });
  const deliveries = await deliveriesOf(sql, [id]);
  expect(deliveries).toHaveLength(1);
  expect(deliveries[0]).toMatchObject({
    endpoint_id: endpointId,
    channel: "webhook",
    outcome: "SUCCESS",
    http_status: 200,
    error: null,
  });
  expect(deliveries[0]?.latency_ms).toBeGreaterThanOrEqual(30);
}, 30_000);

test("two rules naming the same URL deliver once; disabled endpoints are skipped", async () => {
  const t = await tenant(sql, "snd-dedupe");
  const [r1, r2, r3, r4] = [await t.rule(), await t.rule(), await t.rule(), await t.rule()] as string[];
  const shared = `/shared/${t.clientId}`;
  const disabled = `/disabled/${t.clientId}`;
  await t.endpoint(r1 as string, "webhook", sink.url(shared));
  await t.endpoint(r2 as string, "webhook", sink.url(shared));
  await t.endpoint(r3 as string, "webhook", sink.url(disabled), { enabled: false });
  await t.endpoint(r4 as string, "webhook", sink.url(disabled), { enabled: false });
  const both = await t.notification([r1 as string, r2 as string, r3 as string]);
  const onlyDisabled = await t.notification([r4 as string]);
  const { topic } = await sender("snd-dedupe");
  await producer.send([readyRecord(topic, both, t.clientId), readyRecord(topic, onlyDisabled, t.clientId)]);

  expect(await settled(sql, [both, onlyDisabled], ["SENT", "FAILED"])).toBe(true);
  await Bun.sleep(300);
  expect(requestsTo(shared)).toHaveLength(1);
  expect(requestsTo(disabled)).toHaveLength(0);
  expect(await rowOf(sql, both)).toMatchObject({ status: "SENT", attempts: 1 });
  expect(await rowOf(sql, onlyDisabled)).toMatchObject({
    status: "FAILED",
    last_error: "no enabled endpoint",
  });
  const deliveries = await deliveriesOf(sql, [both, onlyDisabled]);
  expect(deliveries.map((d) => [d.notification_id, d.outcome])).toEqual([[both, "SUCCESS"]]);
}, 30_000);

test("500 then 200: RETRY with next_attempt_at, then SENT by the scheduler, re-sending only what failed", async () => {
  const t = await tenant(sql, "snd-retry");
  const ruleId = await t.rule();
  const good = `/good/${t.clientId}`;
  const flaky = `/flaky/${t.clientId}`;
  const goodId = await t.endpoint(ruleId, "webhook", sink.url(good));
  const flakyId = await t.endpoint(ruleId, "webhook", sink.url(flaky));
  const id = await t.notification([ruleId]);
  const flakyArrivals = recorder(flaky);
  sink.answer((request) => {
    flakyArrivals.record(request);
    if (request.path === flaky && flakyArrivals.arrivals.length === 1)
      return new Response("boom", { status: 500 });
    return new Response("ok");
  });

  // A KEY SHARE lock lets the sender write the RETRY status (a non-key update) but makes the
  // scheduler's FOR UPDATE SKIP LOCKED pass over the row: the RETRY state holds until released.
  let release: () => void = () => {};
  let locked: () => void = () => {};
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = sql.begin(async (tx) => {
    await tx`SELECT id FROM notifications WHERE id = ${id} FOR KEY SHARE`;
    locked();
    await new Promise<void>((resolve) => {
      release = resolve;
    });
  });
  await isLocked;
  const { topic } = await sender("snd-retry");
  await producer.send([readyRecord(topic, id, t.clientId)]);

  expect(await settled(sql, [id], ["RETRY", "SENT", "FAILED"])).toBe(true);
  const retrying = await rowOf(sql, id);
  expect(retrying).toMatchObject({ status: "RETRY", attempts: 1, lease_until: null });
  expect(retrying.last_error).toStartWith("HTTP 500");
  expect(retrying.next_attempt_at).toBeInstanceOf(Date);
  await Bun.sleep(300); // several scheduler passes: the row is due but locked, so it stays RETRY
  expect((await rowOf(sql, id)).status).toBe("RETRY");
  release();
  await holder;

  expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
  await Bun.sleep(300);
  expect(await rowOf(sql, id)).toMatchObject({
    status: "SENT",
    attempts: 2,
    last_error: null,
    next_attempt_at: null,
  });
  expect(requestsTo(good)).toHaveLength(1);
  expect(requestsTo(flaky)).toHaveLength(2);
  // The second attempt came after the time the RETRY row named.
  const second = flakyArrivals.arrivals[1]?.atMs ?? 0;
  expect(second).toBeGreaterThanOrEqual((retrying.next_attempt_at as Date).getTime());
  const deliveries = await deliveriesOf(sql, [id]);
  expect(deliveries.map((d) => [d.endpoint_id, d.outcome, d.http_status])).toEqual(
    expect.arrayContaining([
      [goodId, "SUCCESS", 200],
      [flakyId, "RETRYABLE", 500],
      [flakyId, "SUCCESS", 200],
    ]),
  );
  expect(deliveries).toHaveLength(3);
  expect(deliveries.find((d) => d.outcome === "RETRYABLE")?.error).toBe("HTTP 500");
}, 30_000);

test("429 with Retry-After: 1 -> the next attempt is not before 1 s", async () => {
  const t = await tenant(sql, "snd-429");
  const ruleId = await t.rule();
  const path = `/busy/${t.clientId}`;
  await t.endpoint(ruleId, "webhook", sink.url(path));
  const id = await t.notification([ruleId]);
  const arrivals = recorder(path);
  sink.answer((request) => {
    arrivals.record(request);
    return arrivals.arrivals.length === 1
      ? new Response("slow down", { status: 429, headers: { "retry-after": "1" } })
      : new Response("ok");
  });
  const { topic } = await sender("snd-429");
  await producer.send([readyRecord(topic, id, t.clientId)]);

  expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
  expect(arrivals.arrivals).toHaveLength(2);
  const gapMs = (arrivals.arrivals[1]?.atMs ?? 0) - (arrivals.arrivals[0]?.atMs ?? 0);
  console.log(`429 Retry-After: 1 -> second attempt ${gapMs} ms after the first`);
  expect(gapMs).toBeGreaterThanOrEqual(1000);
  expect(gapMs).toBeLessThan(3000);
  expect(await rowOf(sql, id)).toMatchObject({ status: "SENT", attempts: 2 });
  const deliveries = await deliveriesOf(sql, [id]);
  expect(deliveries.map((d) => [d.outcome, d.http_status])).toEqual([
    ["RETRYABLE", 429],
    ["SUCCESS", 200],
  ]);
}, 30_000);

test("a permanent 404 -> FAILED with the reason, no retry", async () => {
  const t = await tenant(sql, "snd-404");
  const ruleId = await t.rule();
  const path = `/gone/${t.clientId}`;
  await t.endpoint(ruleId, "webhook", sink.url(path));
  const id = await t.notification([ruleId]);
  sink.answer(() => new Response("no such hook", { status: 404 }));
  const { topic } = await sender("snd-404");
  await producer.send([readyRecord(topic, id, t.clientId)]);

  expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
  await Bun.sleep(500);
  expect(await rowOf(sql, id)).toMatchObject({
    status: "FAILED",
    attempts: 1,
    last_error: "HTTP 404",
    next_attempt_at: null,
  });
  expect(requestsTo(path)).toHaveLength(1);
  const deliveries = await deliveriesOf(sql, [id]);
  expect(deliveries.map((d) => [d.outcome, d.http_status, d.error])).toEqual([
    ["PERMANENT", 404, "HTTP 404"],
  ]);
}, 30_000);

test("attempts exhausted (DELIVERY_ATTEMPTS_MAX=2, always 503) -> FAILED", async () => {
  const t = await tenant(sql, "snd-503");
  const ruleId = await t.rule();
  const path = `/down/${t.clientId}`;
  await t.endpoint(ruleId, "webhook", sink.url(path));
  const id = await t.notification([ruleId]);
  sink.answer(() => new Response("down", { status: 503 }));
  const { topic } = await sender("snd-503", { DELIVERY_ATTEMPTS_MAX: "2" });
  await producer.send([readyRecord(topic, id, t.clientId)]);

  expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
  await Bun.sleep(500);
  expect(await rowOf(sql, id)).toMatchObject({
    status: "FAILED",
    attempts: 2,
    last_error: "gave up after 2 attempts: HTTP 503",
    next_attempt_at: null,
  });
  expect(requestsTo(path)).toHaveLength(2);
  const deliveries = await deliveriesOf(sql, [id]);
  expect(deliveries.map((d) => [d.outcome, d.http_status])).toEqual([
    ["RETRYABLE", 503],
    ["RETRYABLE", 503],
  ]);
}, 30_000);

test("email through a real SMTP server on loopback -> one message to every recipient, SENT", async () => {
  const smtp = await startSmtpSink();
  try {
    const t = await tenant(sql, "snd-email");
    const ruleId = await t.rule();
    const endpointId = await t.endpoint(ruleId, "email", " ops@example.com, oncall@example.com ,");
    const id = await t.notification([ruleId], { context: { host: "db-1" } });
    const { topic } = await sender("snd-email", {
      SMTP_HOST: "127.0.0.1",
      SMTP_PORT: String(smtp.port),
      SMTP_SECURITY: "none",
      SMTP_FROM: "Alerting <alerts@alerting.example>",
    });
    await producer.send([readyRecord(topic, id, t.clientId)]);

    expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
    await Bun.sleep(300);
    expect(await rowOf(sql, id)).toMatchObject({ status: "SENT", attempts: 1, last_error: null });
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0] as ReceivedMail;
    expect(mail.from).toBe("alerts@alerting.example");
    expect(mail.to).toEqual(["ops@example.com", "oncall@example.com"]);
    expect(mail.raw).toContain("Subject: [FIRING] [HIGH] cpu-high");
    expect(mail.raw).toContain(`Message-ID: <notification-${id}@alerting.example>`);
    const deliveries = await deliveriesOf(sql, [id]);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ endpoint_id: endpointId, channel: "email", outcome: "SUCCESS" });
    expect(deliveries[0]?.smtp_reply).toStartWith("250");
    expect(deliveries[0]?.smtp_reply).toContain(queuedReply);
  } finally {
    // The sender's pooled SMTP connections must close before the server can.
    for (const stage of running.splice(0)) expect(await stopStage(stage)).toBe(0);
    await smtp.close();
  }
}, 30_000);

test("SSRF: without SSRF_ALLOW_CIDRS a loopback webhook is refused -> FAILED, nothing sent", async () => {
  const t = await tenant(sql, "snd-ssrf");
  const ruleId = await t.rule();
  const path = `/internal/${t.clientId}`;
  await t.endpoint(ruleId, "webhook", sink.url(path));
  const id = await t.notification([ruleId]);
  const { topic } = await sender("snd-ssrf", { SSRF_ALLOW_CIDRS: "", SSRF_ALLOW_HOSTS: "" });
  await producer.send([readyRecord(topic, id, t.clientId)]);

  expect(await settled(sql, [id], ["SENT", "FAILED"])).toBe(true);
  await Bun.sleep(300);
  const row = await rowOf(sql, id);
  expect(row).toMatchObject({ status: "FAILED", attempts: 1 });
  expect(row.last_error).toBe("SSRF guard: 127.0.0.1 is in a refused range (loopback)");
  expect(requestsTo(path)).toHaveLength(0);
  const deliveries = await deliveriesOf(sql, [id]);
  expect(deliveries.map((d) => [d.outcome, d.http_status, d.error])).toEqual([
    ["PERMANENT", null, "SSRF guard: 127.0.0.1 is in a refused range (loopback)"],
  ]);
}, 30_000);

test("two senders in one group and redelivered records: each notification delivered once", async () => {
  const t = await tenant(sql, "snd-two");
  const ruleId = await t.rule();
  const path = `/two/${t.clientId}`;
  await t.endpoint(ruleId, "webhook", sink.url(path));
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push(await t.notification([ruleId], { alertId: `two-${i}` }));
  sink.answer(async () => {
    await Bun.sleep(20);
    return new Response("ok");
  });
  const topic = await senderTopic("snd-two");
  const senders = await Promise.all([startSender(db, topic), startSender(db, topic)]);
  running.push(...senders);
  // Both members own partitions, so copies of one record on different partitions race in two processes.
  expect(await groupSettled(senders, 3)).toBe(true);
  // Each record three times: two copies keyed differently (other partitions, the other process),
  // and a third with the first copy's key (the same partition, as a redelivery would be).
  const copies = ids.flatMap((id) => [
    readyRecord(topic.topic, id, t.clientId, `${id}:a`),
    readyRecord(topic.topic, id, t.clientId, `${id}:b`),
  ]);
  await producer.send(copies);
  await producer.send(ids.map((id) => readyRecord(topic.topic, id, t.clientId, `${id}:a`)));

  expect(await settled(sql, ids, ["SENT", "FAILED"])).toBe(true);
  // Once more after everything is SENT: a terminal row is never claimed again.
  await producer.send(ids.map((id) => readyRecord(topic.topic, id, t.clientId, `${id}:b`)));
  await Bun.sleep(1500);

  const keys = requestsTo(path).map((r) => r.headers.get("idempotency-key") ?? "");
  const atSink = countDeliveries(ids, keys);
  expect(atSink.lost).toEqual([]);
  expect(atSink.duplicated).toEqual([]);
  expect(atSink.unexpected).toEqual([]);
  const rows = [...(await rowsById(sql, ids)).values()];
  expect(rows.filter((r) => r.status === "SENT" && r.attempts === 1)).toHaveLength(ids.length);
  const deliveries = await deliveriesOf(sql, ids);
  expect(
    countDeliveries(
      ids,
      deliveries.map((d) => d.notification_id),
    ).duplicated,
  ).toEqual([]);
  // Both processes consumed part of the records.
  const consumed = await Promise.all(
    senders.map(async (stage) => {
      const metrics = await (await fetch(`http://127.0.0.1:${stage.httpPort}/metrics`)).text();
      return Number(/^records_consumed_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    }),
  );
  console.log(`two senders consumed ${consumed.join(" + ")} of ${ids.length * 4} records`);
  expect(consumed.every((n) => n > 0)).toBe(true);
}, 30_000);
