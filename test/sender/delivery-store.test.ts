/**
 * DeliveryStore against the real database: what a claim returns, whose leases a renewal extends, and
 * that recordAttempt's array parameters carry any text (quotes, backslashes, commas, braces, the word
 * NULL) and NULLs intact.
 */
import { expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { DeliveryStore } from "../../src/adapters/delivery-store.ts";
import type { Endpoint } from "../../src/channels/types.ts";
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

  const [claimed] = (await store.claimWithWork([id])).claimed;
  expect(claimed).toEqual({
    leasedAtMs: expect.any(Number),
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
  expect((await store.claimWithWork([id])).claimed).toEqual([]); // already SENDING under a lease

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

test("claimWithWork claims and lists each one's pending endpoints in one statement", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-claim-work");
  const [ruleA, ruleB, bare] = [await client.rule(), await client.rule(), await client.rule()];
  await client.endpoint(ruleA, "webhook", "https://example.com/a");
  await client.endpoint(ruleB, "webhook", "https://example.com/a"); // same URL: delivered once
  await client.endpoint(ruleB, "webhook", "https://example.com/b");
  await client.endpoint(ruleB, "webhook", "https://example.com/off", { enabled: false });
  const context = { host: "db-1", quote: 'a"b' };
  const both = await client.notification([ruleA, ruleB], { alertId: "alert-both", context });
  const none = await client.notification([bare]);

  const first = await store.claimWithWork([both, none, both]);
  expect(first.claimed.find((n) => n.id === both)).toEqual({
    leasedAtMs: expect.any(Number),
    id: both,
    clientId: client.clientId,
    alertId: "alert-both",
    severity: "HIGH",
    source: "billing-api",
    name: "cpu-high",
    kind: "firing",
    context,
    ruleIds: [ruleA, ruleB],
    eventTime: new Date("2025-03-01T12:00:00Z"),
    attempts: 1,
  });
  expect(first.claimed.map((n) => n.id).sort()).toEqual([both, none].sort());
  const pending = first.work.get(both)?.pending ?? [];
  expect(pending.map((e) => [e.value, e.clientId])).toEqual([
    ["https://example.com/a", client.clientId],
    ["https://example.com/b", client.clientId],
  ]);
  expect(first.work.get(none)).toEqual({ pending: [], deliveredEarlier: 0, permanentEarlier: 0 });
  expect(await store.claimWithWork([both, none])).toEqual({ claimed: [], work: new Map() }); // leased

  // /a delivered, /b to retry at once: the next claim lists /b alone and counts /a as delivered.
  const [atA, atB] = pending as [Endpoint, Endpoint];
  const attempt = (endpoint: Endpoint, outcome: string) => ({
    notificationId: both,
    attempt: 1,
    endpointId: endpoint.id,
    channel: "webhook",
    outcome,
    httpStatus: null,
    smtpReply: null,
    latencyMs: 1,
    error: null,
  });
  await store.recordAttempt(
    [attempt(atA, "SUCCESS"), attempt(atB, "RETRYABLE")],
    [
      { notificationId: both, attempts: 1, decision: { status: "RETRY", nextAttemptDelayMs: 0 } },
      { notificationId: none, attempts: 1, decision: { status: "SENT" } },
    ],
  );
  const second = await store.claimWithWork([both, none]);
  expect(second.claimed.map((n) => [n.id, n.attempts])).toEqual([[both, 2]]);
  expect(second.work).toEqual(
    new Map([[both, { pending: [atB], deliveredEarlier: 1, permanentEarlier: 0 }]]),
  );
  expect(await store.endpointWork(second.claimed)).toEqual(second.work);
});

test("recordAttempt stores any text and NULLs, and fences the status on attempts", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-record");
  const rule = await client.rule();
  const endpointId = await client.endpoint(rule, "webhook", "https://example.com/b");
  const first = await client.notification([rule]);
  const second = await client.notification([rule]);
  await store.claimWithWork([first, second]);

  const awkward = 'HTTP 500: {"a": "b,c"} \\ back\\slash "quoted" NULL, {braces} ünïcødé\ttab';
  await store.recordAttempt(
    [
      {
        notificationId: first,
        attempt: 1,
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
        attempt: 1,
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
      attempt: 1,
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
      attempt: 1,
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

test("recordAttempt again, as after a commit whose answer was lost, writes nothing more", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-record-twice");
  const rule = await client.rule();
  const endpointId = await client.endpoint(rule, "webhook", "https://example.com/twice");
  const id = await client.notification([rule]);
  const [claimed] = (await store.claimWithWork([id])).claimed;
  if (claimed === undefined) throw new Error("not claimed");
  const record = () =>
    store.recordAttempt(
      [
        {
          notificationId: id,
          attempt: claimed.attempts,
          endpointId,
          channel: "webhook",
          outcome: "SUCCESS",
          httpStatus: 200,
          smtpReply: null,
          latencyMs: 5,
          error: null,
        },
      ],
      [{ notificationId: id, attempts: claimed.attempts, decision: { status: "SENT" } }],
    );
  await record();
  await record();
  expect((await deliveriesOf(sql, [id])).map((d) => [d.outcome, d.attempt])).toEqual([["SUCCESS", 1]]);
  expect((await rowOf(sql, id)).status).toBe("SENT");
});

test("renewLeases extends only the leases still ours, fenced on attempts", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-renew");
  const rule = await client.rule();
  const kept = await client.notification([rule]);
  const takenOver = await client.notification([rule]);
  const { claimed } = await store.claimWithWork([kept, takenOver]);
  expect(claimed.map((n) => n.id).sort()).toEqual([kept, takenOver].sort());
  // Another sender claimed `takenOver` after our lease ran out: its attempts count moved on.
  await sql`UPDATE notifications SET attempts = attempts + 1, lease_until = now() WHERE id = ${takenOver}`;
  await sql`UPDATE notifications SET lease_until = now() WHERE id = ${kept}`;

  expect([...(await store.renewLeases(claimed))]).toEqual([kept]);
  const renewed = await rowOf(sql, kept);
  expect(renewed.status).toBe("SENDING");
  expect((renewed.lease_until as Date).getTime()).toBeGreaterThan(Date.now() + 25_000);
  expect((renewed.next_attempt_at as Date).getTime()).toBe((renewed.lease_until as Date).getTime());
  expect((await rowOf(sql, takenOver)).lease_until?.getTime()).toBeLessThan(Date.now() + 1000);
});

test("an address delivered earlier is not pending again when another endpoint row now stands for it", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const client = await tenant(sql, "store-address");
  const rule = await client.rule();
  const other = await client.rule();
  const first = await client.endpoint(rule, "webhook", "https://example.com/same");
  const id = await client.notification([rule, other]);
  const [claimed] = (await store.claimWithWork([id])).claimed;
  if (claimed === undefined) throw new Error("not claimed");
  await store.recordAttempt(
    [
      {
        notificationId: id,
        attempt: claimed.attempts,
        endpointId: first,
        channel: "webhook",
        outcome: "SUCCESS",
        httpStatus: 200,
        smtpReply: null,
        latencyMs: 3,
        error: null,
      },
    ],
    [
      {
        notificationId: id,
        attempts: claimed.attempts,
        decision: { status: "RETRY", nextAttemptDelayMs: 0 },
      },
    ],
  );
  // The tenant adds the same URL to the other rule, under an id lower than the first, and disables
  // the first.
  await sql`INSERT INTO endpoints (id, rule_id, client_id, type, value)
            VALUES ('00000000-0000-4000-8000-000000000000', ${other}, ${client.clientId}, 'webhook',
                    'https://example.com/same')`;
  await sql`UPDATE endpoints SET enabled = false WHERE id = ${first}`;
  await sql`UPDATE notifications SET next_attempt_at = now() WHERE id = ${id}`;

  const again = await store.claimWithWork([id]);
  expect(again.work.get(id)).toEqual({ pending: [], deliveredEarlier: 1, permanentEarlier: 0 });
});
