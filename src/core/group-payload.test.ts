import { describe, expect, test } from "bun:test";
import { groupedAlert, groupMessage } from "../../harness/group-messages.ts";
import {
  commonLabels,
  externalUrlLengthMax,
  fitPrefix,
  type GroupMessage,
  groupHeadline,
  groupMessageKey,
  groupStatus,
  groupSummaryLines,
  groupView,
  headlineLengthMax,
  latestPerAlert,
  summaryListing,
  utf8Bytes,
  webhookBodyBytesMaxDefault,
  webhookBodyBytesMin,
  webhookGroupBody,
} from "./group-payload.ts";

const now = new Date(Date.UTC(2025, 2, 1, 13));
const context = { receiver: "ep-1", externalUrl: "https://alerts.example", now };

interface Body {
  status: string;
  truncatedAlerts: number;
  truncatedNotifications: number;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  alerts: { status: string; notificationId: string; alertId: string; kind: string }[];
  notificationIds: string[];
  alertIds: string[];
}

/** The body, checked against its bound and the window: every alert and notification listed or counted. */
function bounded(m: GroupMessage, bytesMax: number): Body {
  const text = webhookGroupBody(m, context, bytesMax);
  expect(utf8Bytes(text)).toBeLessThanOrEqual(bytesMax);
  const body = JSON.parse(text) as Body;
  const alerts = latestPerAlert(m.alerts);
  expect(body.alerts.length + body.truncatedAlerts).toBe(alerts.length);
  expect(body.alerts.map((a) => a.notificationId)).toEqual(
    alerts.slice(0, body.alerts.length).map((a) => a.id),
  );
  expect(body.notificationIds.length + body.truncatedNotifications).toBe(m.alerts.length);
  expect(body.notificationIds).toEqual(m.alerts.slice(0, body.notificationIds.length).map((a) => a.id));
  expect(body.alertIds).toEqual(m.alerts.slice(0, body.alertIds.length).map((a) => a.alertId));
  return body;
}

const pieces = ["a", "é", '"', "\\", "\n", "€", "\u0001", "😀", "<", "&"];
const source = Array.from({ length: 20_000 }, (_, i) => pieces[(i * 13) % pieces.length]).join("");
const texts = new Map<string, string>();

/**
 * Deterministic text of `length` UTF-16 units mixing in what JSON escapes and multi-byte UTF-8 (a
 * surrogate pair may be cut). Flat copies, as a database read makes them: a slice of one long string
 * would make every string operation on it measure the slicing.
 */
function text(seed: number, length: number): string {
  const start = (seed * 7) % 1000;
  const key = `${start}:${length}`;
  let value = texts.get(key);
  if (value === undefined) {
    value = JSON.parse(JSON.stringify(source.slice(start, start + length))) as string;
    texts.set(key, value);
  }
  return value;
}

describe("each alert once, in its latest state", () => {
  test("a resolution wins over its firing; the alert keeps its first place; all rows stay carried", () => {
    const rows = [
      groupedAlert(1),
      groupedAlert(2),
      groupedAlert(3, { alertId: "alert-1", kind: "resolved" }),
      groupedAlert(4, { alertId: "alert-2", kind: "repeat:1" }),
    ];
    const view = groupView(groupMessage(rows));
    expect(view.alerts.map((a) => [a.alertId, a.id, a.kind ?? "firing"])).toEqual([
      ["alert-1", "103", "resolved"],
      ["alert-2", "104", "repeat:1"],
    ]);
    expect(view.status).toBe("firing");
    const body = bounded(groupMessage(rows), webhookBodyBytesMaxDefault);
    expect(body.alerts.map((a) => [a.alertId, a.status, a.kind])).toEqual([
      ["alert-1", "resolved", "resolved"],
      ["alert-2", "firing", "repeat:1"],
    ]);
    expect(body.notificationIds).toEqual(["101", "102", "103", "104"]);
    expect(body.alertIds).toEqual(["alert-1", "alert-2", "alert-1", "alert-2"]);
    expect(groupHeadline(view)).toBe("[FIRING:2] source=billing-api");
  });

  test("a window whose every alert resolved is resolved, though it also carries their firing rows", () => {
    const rows = [
      groupedAlert(1),
      groupedAlert(2),
      groupedAlert(3, { alertId: "alert-1", kind: "resolved" }),
    ];
    expect(groupView(groupMessage(rows)).status).toBe("firing");
    rows.push(groupedAlert(4, { alertId: "alert-2", kind: "resolved" }));
    const view = groupView(groupMessage(rows));
    expect(view.status).toBe("resolved");
    expect(bounded(groupMessage(rows), webhookBodyBytesMaxDefault).status).toBe("resolved");
    expect(groupHeadline(view)).toBe("[RESOLVED:2] source=billing-api");
  });

  test("a resolution then the next episode's firing: the alert fires again", () => {
    const rows = [
      groupedAlert(1),
      groupedAlert(2, { alertId: "alert-1", kind: "resolved" }),
      groupedAlert(3, { alertId: "alert-1" }),
    ];
    expect(latestPerAlert(rows).map((a) => a.id)).toEqual(["103"]);
    expect(groupView(groupMessage(rows)).status).toBe("firing");
  });

  test("group status: firing while any alert fires", () => {
    expect(groupStatus([groupedAlert(1), groupedAlert(2, { kind: "resolved" })])).toBe("firing");
    expect(groupStatus([groupedAlert(1, { kind: "resolved" })])).toBe("resolved");
    expect(groupStatus([groupedAlert(1, { kind: "repeat:2" })])).toBe("firing");
  });
});

describe("listing within a bound", () => {
  test("a prefix: the first item that does not fit ends it", () => {
    expect(fitPrefix(4, 10, () => 3)).toEqual({ count: 3, used: 9 });
    expect(fitPrefix(4, 10, (i) => (i === 1 ? 20 : 1))).toEqual({ count: 1, used: 1 });
    expect(fitPrefix(4, 0, () => 0)).toEqual({ count: 4, used: 0 });
    expect(fitPrefix(4, -5, () => 0)).toEqual({ count: 0, used: 0 });
  });

  test("summaries: up to listMax, as many as fit with the count line's room, the rest counted", () => {
    const ten = (n: number) => Array.from({ length: n }, () => "x".repeat(10));
    const list = (items: string[], listMax: number, budget: number) =>
      summaryListing(
        items,
        listMax,
        budget,
        (item) => item.length,
        (more) => `+${more}`.length,
      );
    expect(list(ten(5), 10, 50)).toEqual({ listed: ten(5), more: 0 });
    // All five would fit, but not with the count line the cap calls for.
    expect(list(ten(6), 5, 50)).toEqual({ listed: ten(4), more: 2 });
    expect(list(ten(6), 10, 55)).toEqual({ listed: ten(5), more: 1 });
    expect(list(["x".repeat(100)], 10, 50)).toEqual({ listed: [], more: 1 });
    expect(list([], 10, 0)).toEqual({ listed: [], more: 0 });
  });

  test("Slack-style lines: the cap, the count line, and a line too long for the bound", () => {
    const all = Array.from({ length: 7 }, (_, i) => groupedAlert(i));
    const view = groupView(groupMessage(all));
    const lines = (listMax: number, lengthMax: number) =>
      groupSummaryLines(view, listMax, lengthMax, (line) => line.length);
    expect(lines(2, 10_000)).toEqual([
      "[FIRING] [HIGH] cpu-high from billing-api (alert-0)",
      "[FIRING] [HIGH] cpu-high from billing-api (alert-1)",
      "and 5 more",
    ]);
    expect(lines(10, 10_000)).toHaveLength(7);
    // One line is 52 characters with its line break; 3 of them and "and 4 more" fit in 167.
    expect(lines(10, 167)).toHaveLength(4);
    expect(lines(10, 166)).toEqual([...lines(10, 10_000).slice(0, 2), "and 5 more"]);
    expect(lines(10, 5)).toEqual(["and 7 more"]);
  });
});

describe("webhook document", () => {
  test("Alertmanager's version 4 shape, the notification and alert ids, the truncated counts", () => {
    const body = JSON.parse(
      webhookGroupBody(
        groupMessage([groupedAlert(1), groupedAlert(2, { kind: "resolved" }), groupedAlert(3)], 2),
        context,
        webhookBodyBytesMaxDefault,
      ),
    );
    expect(body).toEqual({
      version: "4",
      groupKey: "k1",
      truncatedAlerts: 1,
      status: "firing",
      receiver: "ep-1",
      groupLabels: { source: "billing-api" },
      commonLabels: { alertname: "cpu-high", severity: "HIGH", source: "billing-api", region: "eu" },
      commonAnnotations: {},
      externalURL: "https://alerts.example",
      alerts: [
        {
          status: "firing",
          labels: {
            host: "db-1",
            region: "eu",
            alertname: "cpu-high",
            severity: "HIGH",
            source: "billing-api",
          },
          annotations: {},
          startsAt: "2025-03-01T12:00:01.000Z",
          endsAt: "0001-01-01T00:00:00Z",
          generatorURL: "",
          fingerprint: "alert-1",
          notificationId: "101",
          alertId: "alert-1",
          kind: "firing",
        },
        {
          status: "resolved",
          labels: {
            host: "db-2",
            region: "eu",
            alertname: "cpu-high",
            severity: "HIGH",
            source: "billing-api",
          },
          annotations: {},
          startsAt: "2025-03-01T12:00:02.000Z",
          endsAt: now.toISOString(),
          generatorURL: "",
          fingerprint: "alert-2",
          notificationId: "102",
          alertId: "alert-2",
          kind: "resolved",
        },
      ],
      clientId: "c1",
      windowNo: 3,
      truncatedNotifications: 0,
      notificationIds: ["101", "102", "103"],
      alertIds: ["alert-1", "alert-2", "alert-3"],
    });
  });

  test("common labels keep only what every alert shares, context values as text", () => {
    expect(commonLabels([])).toEqual({});
    expect(commonLabels([groupedAlert(1), groupedAlert(2, { severity: "LOW" })])).toEqual({
      alertname: "cpu-high",
      source: "billing-api",
      region: "eu",
    });
    const n = { n: 1, on: true, alertname: "shadowed" };
    expect(commonLabels([groupedAlert(1, { context: n }), groupedAlert(2, { context: { ...n } })])).toEqual({
      n: "1",
      on: "true",
      alertname: "cpu-high",
      severity: "HIGH",
      source: "billing-api",
    });
    expect(
      commonLabels([groupedAlert(1, { context: { n: 1 } }), groupedAlert(2, { context: { n: "1" } })]),
    ).toHaveProperty("n");
    expect(
      commonLabels([groupedAlert(1, { context: { n: 1 } }), groupedAlert(2, { context: {} })]),
    ).not.toHaveProperty("n");
  });

  test("headline and key; a line break in a label value cannot forge a header", () => {
    const m = { ...groupMessage([groupedAlert(1), groupedAlert(2)]), labels: { source: "a\r\nBcc: x" } };
    expect(groupHeadline(groupView(m))).toBe("[FIRING:2] source=a Bcc: x");
    expect(groupMessageKey(m)).toBe("group-k1-1767225600000-3");
  });

  test("a long headline is cut, whole characters only", () => {
    const m = { ...groupMessage([groupedAlert(1)]), labels: { source: "😀".repeat(headlineLengthMax) } };
    const headline = groupHeadline(groupView(m));
    expect(headline.length).toBeLessThanOrEqual(headlineLengthMax);
    expect(headline.endsWith("…")).toBe(true);
    expect(headline.isWellFormed()).toBe(true);
  });
});

describe("webhook body bound", () => {
  test("everything fits: nothing truncated", () => {
    const body = bounded(
      groupMessage(Array.from({ length: 50 }, (_, i) => groupedAlert(i))),
      webhookBodyBytesMaxDefault,
    );
    expect(body.alerts).toHaveLength(50);
    expect(body.truncatedNotifications).toBe(0);
  });

  test("worst case: 10,000 alerts with large labels, 1,000 listed at most, within 256 KiB", () => {
    const rows = Array.from({ length: 10_000 }, (_, i) =>
      groupedAlert(i, {
        id: String(9_000_000_000_000 + i),
        alertId: `am-${text(i, 90)}-${i}`,
        name: text(i + 1, 200),
        context: Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`label-${k}`, text(i + k, 200)])),
      }),
    );
    const m = groupMessage(rows, 1000);
    const timesMs: number[] = [];
    for (let run = 0; run < 5; run++) {
      const started = performance.now();
      webhookGroupBody(m, context, webhookBodyBytesMaxDefault);
      timesMs.push(performance.now() - started);
    }
    timesMs.sort((a, b) => a - b);
    console.log(`10,000 alerts, 256 KiB: body built in ${timesMs[2]?.toFixed(1)} ms (median of 5)`);
    const body = bounded(m, webhookBodyBytesMaxDefault);
    expect(body.alerts.length).toBeGreaterThan(0);
    expect(body.notificationIds.length).toBeGreaterThan(0);
    expect(body.truncatedAlerts).toBeGreaterThan(0);
    expect(body.truncatedNotifications).toBeGreaterThan(0);
  }, 30_000);

  test("10,000 rows, each alert firing and resolved in the window: 5,000 listed or counted, resolved", () => {
    const rows = Array.from({ length: 10_000 }, (_, i) =>
      groupedAlert(i, { alertId: `alert-${Math.floor(i / 2)}`, kind: i % 2 === 1 ? "resolved" : undefined }),
    );
    const body = bounded(groupMessage(rows, 1000), 64 * 1024);
    expect(body.alerts.length + body.truncatedAlerts).toBe(5000);
    expect(body.alerts.every((a) => a.status === "resolved")).toBe(true);
    expect(body.status).toBe("resolved");
  });

  test("neither the alerts nor the ids crowd out the other", () => {
    const rows = Array.from({ length: 10_000 }, (_, i) =>
      groupedAlert(i, { alertId: `a-${"x".repeat(60)}-${i}` }),
    );
    const body = bounded(groupMessage(rows, 1000), 64 * 1024);
    const listedBytes = utf8Bytes(JSON.stringify(body.alerts));
    const idBytes =
      utf8Bytes(JSON.stringify(body.notificationIds)) + utf8Bytes(JSON.stringify(body.alertIds));
    expect(listedBytes).toBeGreaterThan(28 * 1024);
    expect(idBytes).toBeGreaterThan(28 * 1024);
    // Few alerts listed: the ids take the rest of the room.
    const few = bounded(groupMessage(rows, 5), 64 * 1024);
    expect(few.alerts).toHaveLength(5);
    expect(few.notificationIds.length).toBeGreaterThan(body.notificationIds.length);
  });

  test("one alert larger than the bound: listed as a count, its small labels kept", () => {
    const huge = groupedAlert(1, { context: { dump: "x".repeat(300_000), region: "eu" } });
    const m = { ...groupMessage([huge]), labels: { source: "billing-api", dump: "x".repeat(300_000) } };
    const body = bounded(m, webhookBodyBytesMin);
    expect(body.alerts).toEqual([]);
    expect(body.truncatedAlerts).toBe(1);
    expect(body.notificationIds).toEqual(["101"]);
    expect(body.groupLabels).toEqual({ source: "billing-api" });
    expect(body.commonLabels).toEqual({
      region: "eu",
      alertname: "cpu-high",
      severity: "HIGH",
      source: "billing-api",
    });
  });

  test("the fixed fields at their longest fit in the least bound", () => {
    const huge = groupedAlert(1, {
      id: "9".repeat(19),
      alertId: text(1, 1024),
      context: { dump: "x".repeat(300_000) },
    });
    const m: GroupMessage = {
      groupKey: "f".repeat(32),
      windowNo: 2 ** 31 - 1,
      incarnation: null,
      clientId: "6f1c1f4e-2a4b-4e0e-9d8e-0c7b1f0e5a11",
      labels: Object.fromEntries(Array.from({ length: 16 }, (_, k) => [text(k, 128), text(k, 16_384)])),
      alertsMax: 1000,
      alerts: Array.from({ length: 10_000 }, () => huge),
    };
    const longest = {
      ...context,
      receiver: "9d1b7a52-3c4e-4f5a-8b6c-7d8e9f0a1b2c",
      externalUrl: "\u0001".repeat(externalUrlLengthMax),
    };
    const body = webhookGroupBody(m, longest, webhookBodyBytesMin);
    expect(utf8Bytes(body)).toBeLessThanOrEqual(webhookBodyBytesMin);
    const parsed = JSON.parse(body) as Body;
    expect(parsed).toMatchObject({ alerts: [], truncatedAlerts: 1, groupLabels: {} });
    expect(parsed.notificationIds.length + parsed.truncatedNotifications).toBe(10_000);
  });

  test("any bound, any mix of sizes: within the bound, every alert and notification listed or counted", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 40; round++) {
      const rows = Array.from({ length: Math.floor(random() * 300) }, (_, i) =>
        groupedAlert(i, {
          alertId: `a-${Math.floor(random() * 100)}`,
          kind: random() < 0.3 ? "resolved" : undefined,
          context: { note: text(i, Math.floor(random() ** 3 * 20_000)) },
        }),
      );
      const bytesMax = webhookBodyBytesMin + Math.floor(random() * 100_000);
      bounded(groupMessage(rows, 1 + Math.floor(random() * 200)), bytesMax);
    }
  });
});
