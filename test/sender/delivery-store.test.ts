/**
 * DeliveryStore against the real database: what a claim returns, and that recordAttempt's array
 * parameters carry any text (quotes, backslashes, commas, braces, the word NULL) and NULLs intact.
 */
import { expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { DeliveryStore } from "../../src/adapters/delivery-store.ts";
import { deliveriesOf, rowOf, tenant } from "./support.ts";

// Rows it leaves SENDING or RETRY are seen by no other test's scheduler: the schema is the file's.
const { sql } = useTestSchema("delivery_store");

test("claim returns every field as stored; endpointWork lists the pending endpoints", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-claim");
  const ruleA = await client.rule();
  const ruleB = await client.rule();
  const endpointId = await client.endpoint(ruleA, "webhook", "https://example.com/a", { secret: "s" });
  const context = { host: "db-1", n: 1.5, nested: { list: [1, "two", null] }, quote: 'a"b\\c' };
  const id = await client.notification([ruleA, ruleB], { alertId: "alert-1", context });

  const [claimed] = await store.claim([id]);
  expect(claimed).toEqual({
    id,
    clientId: client.clientId,
    alertId: "alert-1",
    severity: "HIGH",
    source: "billing-api",
    name: "cpu-high",
    kind: "firing",
    context,
    ruleIds: [ruleA, ruleB],
    eventTime: new Date("2025-03-01T12:00:00Z"),
    attempts: 1,
  });
  expect(await store.claim([id])).toEqual([]); // already SENDING under a lease

  const work = await store.endpointWork([claimed as never]);
  expect(work.get(id)).toEqual({
    pending: [
      {
        id: endpointId,
        clientId: client.clientId,
        type: "webhook",
        value: "https://example.com/a",
        secret: "s",
      },
    ],
    deliveredEarlier: 0,
    permanentEarlier: 0,
  });
});

test("recordAttempt stores any text and NULLs, and fences the status on attempts", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-record");
  const rule = await client.rule();
  const endpointId = await client.endpoint(rule, "webhook", "https://example.com/b");
  const first = await client.notification([rule]);
  const second = await client.notification([rule]);
  await store.claim([first, second]);

  const awkward = 'HTTP 500: {"a": "b,c"} \\ back\\slash "quoted" NULL, {braces} ünïcødé\ttab';
  await store.recordAttempt(
    [
      {
        notificationId: first,
        endpointId,
        channel: "webhook",
        outcome: "RETRYABLE",
        httpStatus: 500,
        smtpReply: null,
        latencyMs: 12,
        error: awkward,
      },
      {
        notificationId: second,
        endpointId,
        channel: "webhook",
        outcome: "SUCCESS",
        httpStatus: null,
        smtpReply: "NULL",
        latencyMs: 0,
        error: null,
      },
    ],
    [
      {
        notificationId: first,
        attempts: 1,
        decision: { status: "RETRY", nextAttemptDelayMs: 1500.25, error: awkward },
      },
      // Not ours anymore (another claim counted a later attempt): left as it is.
      { notificationId: second, attempts: 2, decision: { status: "SENT" } },
    ],
  );

  const deliveries = await deliveriesOf(sql, [first, second]);
  expect(
    deliveries
      .map(({ attempted_at: _, ...rest }) => rest)
      .sort((a, b) => (a.notification_id < b.notification_id ? -1 : 1)),
  ).toEqual([
    {
      notification_id: first,
      endpoint_id: endpointId,
      channel: "webhook",
      outcome: "RETRYABLE",
      http_status: 500,
      smtp_reply: null,
      latency_ms: 12,
      error: awkward,
    },
    {
      notification_id: second,
      endpoint_id: endpointId,
      channel: "webhook",
      outcome: "SUCCESS",
      http_status: null,
      smtp_reply: "NULL",
      latency_ms: 0,
      error: null,
    },
  ]);
  const retried = await rowOf(sql, first);
  expect(retried.status).toBe("RETRY");
  expect(retried.last_error).toBe(awkward);
  expect(retried.lease_until).toBeNull();
  const delayMs = (retried.next_attempt_at as Date).getTime() - Date.now();
  expect(delayMs).toBeGreaterThan(0);
  expect(delayMs).toBeLessThanOrEqual(1501);
  const fenced = await rowOf(sql, second);
  expect(fenced.status).toBe("SENDING");
  expect(fenced.attempts).toBe(1);
});
