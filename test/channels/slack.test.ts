import { afterAll, expect, test } from "bun:test";
import { HttpTransport } from "../../src/channels/http.ts";
import { SlackChannel } from "../../src/channels/slack.ts";
import { SsrfGuard } from "../../src/channels/ssrf.ts";
import { endpoint, groupMessage, notification } from "./fixtures.ts";
import { HttpSink } from "./sink.ts";

const sink = new HttpSink();
afterAll(() => sink.stop());
const slack = new SlackChannel(
  new HttpTransport({ guard: new SsrfGuard({ cidrs: ["127.0.0.1"] }), timeoutMs: 2000, redirectsMax: 0 }),
);

test("posts an incoming-webhook message: text plus a severity-coloured attachment", async () => {
  const alert = notification({ name: "disk <full> & @channel", context: { mount: "/var" } });
  const result = await slack.deliver(endpoint("slack", sink.url("/services/T0/B0/x")), alert);

  expect(result).toMatchObject({ outcome: "SUCCESS", httpStatus: 200 });
  const [request] = sink.received;
  expect(request?.path).toBe("/services/T0/B0/x");
  expect(request?.headers.get("content-type")).toBe("application/json");
  expect(JSON.parse(request?.body ?? "")).toEqual({
    text: "[FIRING] [CRITICAL] disk &lt;full&gt; &amp; @channel from billing-api",
    attachments: [
      {
        color: "danger",
        fallback: "[FIRING] [CRITICAL] disk &lt;full&gt; &amp; @channel from billing-api",
        title: "disk &lt;full&gt; &amp; @channel",
        fields: [
          { title: "Source", value: "billing-api", short: true },
          { title: "Name", value: "disk &lt;full&gt; &amp; @channel", short: true },
          { title: "Alert ID", value: "alert-7", short: true },
          { title: "Severity", value: "CRITICAL", short: true },
          { title: "Status", value: "firing", short: true },
          { title: "Context", value: "mount: /var", short: false },
        ],
        ts: 1740830400,
      },
    ],
  });
});

test.each([
  ["HIGH", "#ff8c00"],
  ["MEDIUM", "warning"],
  ["LOW", "#9e9e9e"],
] as const)("%s is coloured %s", async (severity, colour) => {
  sink.received.length = 0;
  await slack.deliver(endpoint("slack", sink.url()), notification({ severity, context: {} }));
  const payload = JSON.parse(sink.received[0]?.body ?? "");
  expect(payload.attachments[0].color).toBe(colour);
  expect(payload.attachments[0].fields).toHaveLength(5);
});

test("a resolved notification and a reminder say so in the text and the Status field", async () => {
  for (const [kind, prefix] of [
    ["resolved", "[RESOLVED] [CRITICAL]"],
    ["repeat:2", "[FIRING] [CRITICAL]"],
  ] as const) {
    sink.received.length = 0;
    await slack.deliver(endpoint("slack", sink.url()), notification({ kind }));
    const payload = JSON.parse(sink.received[0]?.body ?? "");
    expect(payload.text).toStartWith(prefix);
    expect(payload.attachments[0].fields).toContainEqual({ title: "Status", value: kind, short: true });
  }
});

test("Slack's error answers are classified like any HTTP answer, without echoing the body", async () => {
  sink.answer(() => new Response("invalid_token", { status: 403 }));
  const result = await slack.deliver(endpoint("slack", sink.url()), notification());
  expect(result).toMatchObject({ outcome: "PERMANENT", httpStatus: 403, error: "HTTP 403" });
  expect(JSON.stringify(result)).not.toContain("invalid_token");
});

test("a group window: one compact summary with the first 10 alerts and the count of the rest", async () => {
  sink.answer(() => new Response("ok"));
  const result = await slack.deliverGroup(endpoint("slack", sink.url("/group")), groupMessage(14));
  expect(result).toMatchObject({ outcome: "SUCCESS" });
  const body = JSON.parse(sink.received.at(-1)?.body ?? "");
  expect(body.text).toBe("[FIRING:14] source=billing-api");
  const lines: string[] = body.attachments[0].text.split("\n");
  expect(lines).toHaveLength(11);
  expect(lines[0]).toBe("[FIRING] [CRITICAL] disk &lt;full&gt; from billing-api (alert-0)");
  expect(lines[10]).toBe("and 4 more");
  expect(body.attachments[0].color).toBe("danger");
});
