import { afterAll, expect, test } from "bun:test";
import { HttpTransport } from "../../src/channels/http.ts";
import { SsrfGuard } from "../../src/channels/ssrf.ts";
import { WebhookChannel } from "../../src/channels/webhook.ts";
import { KeyedRateLimiter } from "../../src/core/rate-limit.ts";
import { endpoint, notification } from "./fixtures.ts";
import { HttpSink } from "./sink.ts";

const sink = new HttpSink(async () => {
  await Bun.sleep(20);
  return new Response("ok");
});
afterAll(() => sink.stop());

test("a burst beyond the limits is queued and paced, not dropped", async () => {
  const webhook = new WebhookChannel(
    new HttpTransport({ guard: new SsrfGuard({ cidrs: ["127.0.0.1"] }), timeoutMs: 5000, redirectsMax: 0 }),
  );
  const limiter = new KeyedRateLimiter({ ratePerSecond: 40, burst: 5, concurrencyMax: 3, queueMax: 50 });
  const target = endpoint("webhook", sink.url());
  const count = 25;

  const startedMs = performance.now();
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limiter.run(target.id, () => webhook.deliver(target, notification({ id: String(i) }))),
    ),
  );
  const elapsedMs = performance.now() - startedMs;

  expect(results.every((result) => result.outcome === "SUCCESS")).toBe(true);
  expect(sink.received.map((request) => request.headers.get("idempotency-key")).sort()).toEqual(
    Array.from({ length: count }, (_, i) => String(i)).sort(),
  );
  expect(sink.inFlightMax).toBeLessThanOrEqual(3);
  // 5 start from the burst, the other 20 wait for tokens at 40/s: at least 500 ms in all.
  expect(elapsedMs).toBeGreaterThanOrEqual(480);
});
