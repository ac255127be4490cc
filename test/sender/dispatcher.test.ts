/**
 * The dispatcher against the real database and a real receiver, when a channel breaks its promise
 * never to throw (a fault of ours: rendering, a broken assumption): that endpoint's attempt is a
 * retryable result, and the rest of the dispatch, delivered, is still recorded, so it is not
 * delivered again. And when recording the outcome outlasts the lease: the leases are renewed until
 * it is in, so no other sender delivers the rows again.
 */
import { afterAll, expect, test } from "bun:test";
import { quiet } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { DeliveryStore } from "../../src/adapters/delivery-store.ts";
import { HttpTransport } from "../../src/channels/http.ts";
import { SsrfGuard } from "../../src/channels/ssrf.ts";
import type { Channel, EndpointType } from "../../src/channels/types.ts";
import { WebhookChannel } from "../../src/channels/webhook.ts";
import { KeyedRateLimiter } from "../../src/core/rate-limit.ts";
import { defaultBackoffPolicy } from "../../src/core/retry.ts";
import { Dispatcher } from "../../src/stages/sender/dispatcher.ts";
import { HttpSink } from "../channels/sink.ts";
import { deliveriesOf, rowOf, tenant } from "./support.ts";

const { sql } = useTestSchema("sender_dispatcher");
const sink = new HttpSink();
afterAll(() => sink.stop());

const throwing: Channel = {
  type: "slack",
  deliver: () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'text')")),
  deliverGroup: () => Promise.reject(new TypeError("unreachable")),
};

test("a channel that throws: its endpoint is retried, the delivered one recorded and not repeated", async () => {
  const store = new DeliveryStore(sql, 30_000);
  const webhook = new WebhookChannel(
    new HttpTransport({
      guard: new SsrfGuard({ cidrs: ["127.0.0.1/32"] }),
      timeoutMs: 2000,
      redirectsMax: 0,
    }),
  );
  const channels = new Map<EndpointType, Channel>([
    ["webhook", webhook],
    ["slack", throwing],
  ]);
  const limiter = new KeyedRateLimiter({
    ratePerSecond: 1000,
    burst: 1000,
    concurrencyMax: 8,
    queueMax: 100,
  });
  const dispatcher = new Dispatcher(store, channels, limiter, defaultBackoffPolicy, {
    lease: { leaseMs: 30_000, deliveryTimeoutMs: 2000 },
    logger: quiet,
  });
  const client = await tenant(sql, "dispatch-throw");
  const rule = await client.rule();
  await client.endpoint(rule, "webhook", sink.url("/ok"));
  await client.endpoint(rule, "slack", "https://hooks.slack.com/services/T0/B0/x");
  const id = await client.notification([rule]);

  const { claimed, work } = await store.claimWithWork([id]);
  expect(await dispatcher.dispatch(claimed, work)).toEqual({ delivered: 1, retryable: 1, permanent: 0 });

  expect(sink.received).toHaveLength(1);
  const row = await rowOf(sql, id);
  expect(row.status).toBe("RETRY");
  expect(row.last_error).toContain("delivery failed unexpectedly: Cannot read properties of undefined");
  const attempts = (await deliveriesOf(sql, [id])).map((d) => [d.channel, d.outcome]).sort();
  expect(attempts).toEqual([
    ["slack", "RETRYABLE"],
    ["webhook", "SUCCESS"],
  ]);
  // The retry goes to the failed endpoint only.
  await sql`UPDATE notifications SET next_attempt_at = now() WHERE id = ${id}`;
  const again = await store.claimWithWork([id]);
  expect(again.work.get(id)?.pending.map((endpoint) => endpoint.type)).toEqual(["slack"]);
});

test("a slow record keeps the leases: no other sender claims the rows before their outcome is in", async () => {
  const leaseMs = 1200;
  // Postgres slow to record: the outcome is written 1 s after the delivery, past the first lease.
  class SlowToRecord extends DeliveryStore {
    override async recordAttempt(...args: Parameters<DeliveryStore["recordAttempt"]>): Promise<void> {
      await Bun.sleep(1000);
      return super.recordAttempt(...args);
    }
  }
  const store = new SlowToRecord(sql, leaseMs);
  const webhook = new WebhookChannel(
    new HttpTransport({ guard: new SsrfGuard({ cidrs: ["127.0.0.1/32"] }), timeoutMs: 200, redirectsMax: 0 }),
  );
  const limiter = new KeyedRateLimiter({
    ratePerSecond: 1000,
    burst: 1000,
    concurrencyMax: 8,
    queueMax: 100,
  });
  const dispatcher = new Dispatcher(store, new Map([["webhook", webhook]]), limiter, defaultBackoffPolicy, {
    lease: { leaseMs, deliveryTimeoutMs: 200 },
    logger: quiet,
  });
  const client = await tenant(sql, "dispatch-slow-record");
  const rule = await client.rule();
  await client.endpoint(rule, "webhook", sink.url("/slow-record"));
  const id = await client.notification([rule]);

  const claimedAtMs = performance.now();
  const { claimed, work } = await store.claimWithWork([id]);
  // Half the lease gone before the delivery starts (it may: the timeout and a quarter still fit).
  await Bun.sleep(500);
  const dispatching = dispatcher.dispatch(claimed, work);
  await Bun.sleep(claimedAtMs + leaseMs + 150 - performance.now()); // the lease as taken has run out
  const other = new DeliveryStore(sql, 30_000);
  expect((await other.claimDue(100)).map((n) => n.id)).not.toContain(id);
  expect(await dispatching).toEqual({ delivered: 1, retryable: 0, permanent: 0 });
  expect(sink.received.filter((r) => r.path === "/slow-record")).toHaveLength(1);
  expect((await rowOf(sql, id)).status).toBe("SENT");
});
