// Real HTTP on loopback only: the sink binds 127.0.0.1, and the guard allow-lists exactly that.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { createServer } from "node:net";
import { HttpTransport } from "../../src/channels/http.ts";
import { type LookupAll, SsrfGuard } from "../../src/channels/ssrf.ts";
import { WebhookChannel } from "../../src/channels/webhook.ts";
import type { LogFields, Logger } from "../../src/runtime/log.ts";
import { endpoint, groupMessage, notification } from "./fixtures.ts";
import { HttpSink } from "./sink.ts";

const sink = new HttpSink();
afterAll(() => sink.stop());
beforeEach(() => {
  sink.received.length = 0;
  sink.answer(() => new Response("ok"));
});

const loopbackAllowed = new SsrfGuard({ cidrs: ["127.0.0.1/32"] });
const channelWith = (guard: SsrfGuard, timeoutMs = 2000) =>
  new WebhookChannel(new HttpTransport({ guard, timeoutMs, redirectsMax: 2 }));
const webhook = channelWith(loopbackAllowed);

describe("webhook delivery", () => {
  test("posts the documented payload and headers, signed when the endpoint has a secret", async () => {
    const result = await webhook.deliver(endpoint("webhook", sink.url(), "s3cret"), notification());

    expect(result).toMatchObject({ outcome: "SUCCESS", httpStatus: 200 });
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(sink.received).toHaveLength(1);
    const [request] = sink.received;
    if (request === undefined) throw new Error("nothing received");
    expect(request.method).toBe("POST");
    expect(request.headers.get("content-type")).toBe("application/json");
    expect(request.headers.get("idempotency-key")).toBe("4242");
    expect(JSON.parse(request.body)).toEqual({
      notificationId: "4242",
      clientId: "6f1c1f4e-2a4b-4e0e-9d8e-0c7b1f0e5a11",
      alertId: "alert-7",
      severity: "CRITICAL",
      source: "billing-api",
      name: "error rate above 5%",
      context: { region: "eu-west-1", errorRate: 0.071 },
      ruleIds: ["0a6a7cb4-8f3e-4b61-9b0c-1f3a9a9d5b22"],
      eventTime: "2025-03-01T12:00:00.000Z",
      status: "firing",
      kind: "firing",
    });
    const timestamp = request.headers.get("x-alerting-timestamp") ?? "";
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
    const expected = createHmac("sha256", "s3cret").update(`${timestamp}.${request.body}`).digest("hex");
    expect(request.headers.get("x-alerting-signature")).toBe(`sha256=${expected}`);
  });

  test("a group window: one signed POST of Alertmanager's document, keyed by group, incarnation and window", async () => {
    const message = groupMessage(3, 2);
    const result = await webhook.deliverGroup(endpoint("webhook", sink.url(), "s3cret"), message);
    expect(result).toMatchObject({ outcome: "SUCCESS", httpStatus: 200 });
    const request = sink.received.at(-1);
    if (request === undefined) throw new Error("nothing received");
    expect(request.headers.get("idempotency-key")).toBe(`group-${message.groupKey}-1767225600000-2`);
    const body = JSON.parse(request.body);
    expect(body).toMatchObject({
      version: "4",
      groupKey: message.groupKey,
      status: "firing",
      receiver: endpoint("webhook", "").id,
      groupLabels: { source: "billing-api" },
      truncatedAlerts: 1,
      notificationIds: ["5000", "5001", "5002"],
    });
    expect(body.alerts.map((a: { fingerprint: string }) => a.fingerprint)).toEqual(["alert-0", "alert-1"]);
    const timestamp = request.headers.get("x-alerting-timestamp") ?? "";
    const expected = createHmac("sha256", "s3cret").update(`${timestamp}.${request.body}`).digest("hex");
    expect(request.headers.get("x-alerting-signature")).toBe(`sha256=${expected}`);
  });

  test("no signature headers without a secret", async () => {
    await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(sink.received[0]?.headers.has("x-alerting-signature")).toBe(false);
    expect(sink.received[0]?.headers.has("x-alerting-timestamp")).toBe(false);
  });

  test("sequential deliveries reuse one kept-alive connection", async () => {
    for (let i = 0; i < 5; i++) await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(sink.received).toHaveLength(5);
    expect(sink.connectionsSeen()).toBe(1);
  });

  test("a refusal is its status and a fixed reason; the receiver's body only reaches the debug log", async () => {
    // deliveries.error is shown to the tenant, and a receiver may be an allow-listed internal service.
    const logged: LogFields[] = [];
    const recording: Logger = {
      debug: (message, fields) => logged.push({ message, ...fields }),
      info: () => {},
      warn: () => {},
      error: () => {},
      child: () => recording,
    };
    const logging = new WebhookChannel(
      new HttpTransport({ guard: loopbackAllowed, timeoutMs: 2000, redirectsMax: 0, logger: recording }),
    );
    const cases: [status: number, outcome: string, error: string][] = [
      [500, "RETRYABLE", "HTTP 500"],
      [503, "RETRYABLE", "HTTP 503"],
      [400, "PERMANENT", "HTTP 400"],
      [404, "PERMANENT", "HTTP 404"],
      [302, "PERMANENT", "HTTP 302 redirect not followed"],
    ];
    for (const [status, outcome, error] of cases) {
      sink.answer(
        () =>
          new Response(`db_password=hunter2  on\nfire ${status}`, { status, headers: { location: "/x" } }),
      );
      const result = await logging.deliver(endpoint("webhook", sink.url()), notification());
      expect(result).toMatchObject({ outcome, httpStatus: status, error });
      expect(JSON.stringify(result)).not.toContain("hunter2");
    }
    expect(logged.map((fields) => fields.body)).toEqual(
      cases.map(([status]) => `db_password=hunter2 on fire ${status}`),
    );
    expect(logged[0]).toMatchObject({ message: "receiver refused a delivery", httpStatus: 500 });
  });

  test("500 is retryable", async () => {
    sink.answer(() => new Response("database on fire", { status: 500 }));
    const result = await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(result).toMatchObject({ outcome: "RETRYABLE", httpStatus: 500, error: "HTTP 500" });
  });

  test("429 with Retry-After is retryable and carries the pause", async () => {
    sink.answer(() => new Response("slow down", { status: 429, headers: { "retry-after": "30" } }));
    const result = await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(result).toMatchObject({ outcome: "RETRYABLE", httpStatus: 429, retryAfterMs: 30_000 });
  });

  test.each([400, 404])("%d is permanent", async (status) => {
    sink.answer(() => new Response(null, { status }));
    const result = await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT", httpStatus: status });
  });

  test("a slow receiver times out as retryable", async () => {
    sink.answer(async () => {
      await Bun.sleep(1000);
      return new Response("late");
    });
    const result = await channelWith(loopbackAllowed, 100).deliver(
      endpoint("webhook", sink.url()),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "RETRYABLE", error: "timed out" });
    expect(result.latencyMs).toBeLessThan(900);
  });

  test("a refused connection is retryable", async () => {
    const closedPort = await freeLoopbackPort();
    const result = await webhook.deliver(
      endpoint("webhook", `http://127.0.0.1:${closedPort}/`),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "RETRYABLE" });
    expect(result.error).toContain("ECONNREFUSED");
  });

  test("307 is followed after re-checking the guard; 302 is not", async () => {
    sink.answer((request) =>
      request.path === "/moved"
        ? new Response(null, { status: 307, headers: { location: "/hook" } })
        : new Response("ok"),
    );
    const followed = await webhook.deliver(endpoint("webhook", sink.url("/moved")), notification());
    expect(followed).toMatchObject({ outcome: "SUCCESS", httpStatus: 200 });
    expect(sink.received.map((request) => [request.method, request.path])).toEqual([
      ["POST", "/moved"],
      ["POST", "/hook"],
    ]);

    sink.answer(() => new Response(null, { status: 302, headers: { location: "/hook" } }));
    const notFollowed = await webhook.deliver(endpoint("webhook", sink.url("/found")), notification());
    expect(notFollowed).toMatchObject({ outcome: "PERMANENT", httpStatus: 302 });
  });

  test("a redirect loop stops after redirectsMax hops", async () => {
    sink.answer(() => new Response(null, { status: 308, headers: { location: "/again" } }));
    const result = await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT", httpStatus: 308 });
    expect(sink.received).toHaveLength(3);
  });
});

describe("SSRF guard on the webhook path", () => {
  test("loopback is refused when not allow-listed, before any request", async () => {
    const result = await channelWith(new SsrfGuard()).deliver(
      endpoint("webhook", sink.url()),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "PERMANENT" });
    expect(result.error).toContain("loopback");
    expect(sink.received).toHaveLength(0);
  });

  test("a redirect to an address outside the allow-list is refused at the hop", async () => {
    // 127.0.0.2 is loopback too, so even a guard bug could not send traffic off this machine.
    sink.answer(() => new Response(null, { status: 307, headers: { location: "http://127.0.0.2:9/" } }));
    const result = await webhook.deliver(endpoint("webhook", sink.url()), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT" });
    expect(result.error).toBe("SSRF guard: 127.0.0.2 is in a refused range (loopback)");
    expect(sink.received).toHaveLength(1);
  });

  test("a non-http URL is refused", async () => {
    const result = await webhook.deliver(endpoint("webhook", "file:///etc/passwd"), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT", error: "scheme file: not allowed" });
  });
});

// 127.0.0.2 stands in for a public address: allow-listed, on this machine, and nothing listens there
// (the sink binds 127.0.0.1 only), so a request pinned to it is refused instead of leaving the machine.
// fetch resolves names itself, with the system resolver rather than the injected one, so the
// rebinding name is localhost: a request sent to a fresh resolution of it would reach the sink.
describe("DNS rebinding", () => {
  const rebindingGuard = () => {
    let localhostLookups = 0;
    const lookup: LookupAll = async (host) =>
      host === "localhost" && localhostLookups++ === 0 ? ["127.0.0.2"] : ["127.0.0.1"];
    return new SsrfGuard({ cidrs: ["127.0.0.2/32"], hosts: ["hook.test"] }, lookup);
  };
  const sinkPort = () => new URL(sink.url()).port;

  test("a name answering a public address at check time and loopback later cannot reach the sink", async () => {
    const result = await channelWith(rebindingGuard()).deliver(
      endpoint("webhook", `http://localhost:${sinkPort()}/hook`),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "RETRYABLE", error: "connection refused (ECONNREFUSED)" });
    expect(sink.received).toHaveLength(0);
  });

  test("each redirect hop goes to the address checked for it, with the URL's host in Host", async () => {
    sink.answer(
      () =>
        new Response(null, { status: 307, headers: { location: `http://localhost:${sinkPort()}/inner` } }),
    );
    const result = await channelWith(rebindingGuard()).deliver(
      endpoint("webhook", `http://hook.test:${sinkPort()}/moved`),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "RETRYABLE", error: "connection refused (ECONNREFUSED)" });
    expect(sink.received.map((request) => [request.path, request.headers.get("host")])).toEqual([
      ["/moved", `hook.test:${sinkPort()}`],
    ]);
  });

  test("a checked address that refuses the connection gives way to the next one", async () => {
    const guard = new SsrfGuard({ cidrs: ["127.0.0.0/30"] }, async () => ["127.0.0.2", "127.0.0.1"]);
    const result = await channelWith(guard).deliver(
      endpoint("webhook", `http://hook.test:${sinkPort()}/hook`),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "SUCCESS", httpStatus: 200 });
    expect(sink.received).toHaveLength(1);
  });
});

/** A port nothing listens on: bind one, note it, close it. */
async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
