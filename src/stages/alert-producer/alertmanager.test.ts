import { describe, expect, test } from "bun:test";
import { AlertStatus } from "../../gen/alerting/v1/alert_pb.ts";
import { ConfigError } from "../../runtime/config.ts";
import {
  alertmanagerMappingFromEnv,
  labelSetFingerprint,
  mapAlertmanagerAlerts,
  type RejectedAlert,
} from "./alertmanager.ts";

const options = { ...alertmanagerMappingFromEnv({}), nowMs: 1_700_000_000_000 };
const mapWith = (body: unknown, overrides: Partial<typeof options> = {}) => {
  const mapped = mapAlertmanagerAlerts(body, { ...options, ...overrides });
  return { ...mapped, alerts: mapped.alerts.map(({ alert }) => alert) };
};
const map = (body: unknown, sourceLabel = "instance") => mapWith(body, { sourceLabel });
/** Each rejected alert's field errors, keyed "[index].path" as one map. */
const fieldErrors = (body: unknown) => {
  const { rejected, bodyError } = map(body);
  if (bodyError !== undefined) return { body: bodyError };
  return Object.fromEntries(
    rejected.flatMap(({ index, fields }: RejectedAlert) =>
      Object.entries(fields).map(([path, reason]) => [`[${index}].${path}`, reason]),
    ),
  );
};

describe("labelSetFingerprint", () => {
  test("equals what Alertmanager 0.25 reports for the same labels", () => {
    // Read back from a real Alertmanager's GET /api/v2/alerts after `amtool alert add`.
    expect(
      labelSetFingerprint(
        new Map([
          ["alertname", "Test"],
          ["severity", "critical"],
          ["instance", "db1"],
          ["zeta", "ü"],
        ]),
      ),
    ).toBe("972856356b1aa589");
    expect(
      labelSetFingerprint(
        new Map([
          ["team", "infra"],
          ["alertname", "HighCPU"],
          ["severity", "warning"],
          ["instance", "10.0.0.1:9100"],
          ["job", "node"],
        ]),
      ),
    ).toBe("8708ff86d4351740");
  });

  test("the empty label set is FNV-1a's offset basis", () => {
    expect(labelSetFingerprint(new Map())).toBe("cbf29ce484222325");
  });
});

describe("mapAlertmanagerAlerts", () => {
  const prometheusAlert = {
    labels: {
      alertname: "HighCPU",
      severity: "warning",
      instance: "10.0.0.1:9100",
      job: "node",
      team: "infra",
    },
    annotations: { summary: "CPU above 90%", runbook_url: "https://runbooks/cpu" },
    startsAt: "2024-05-01T12:00:00.123456789Z",
    endsAt: "2024-05-01T12:05:00Z",
    generatorURL: "http://prometheus:9090/graph?g0.expr=cpu",
  };

  test("maps a Prometheus alert as documented", () => {
    const { alerts, rejected } = map([prometheusAlert]);
    expect(rejected).toEqual([]);
    const startsAtMs = Date.parse("2024-05-01T12:00:00.123Z");
    expect(alerts).toEqual([
      {
        alertId: "am-8708ff86d4351740",
        // options.nowMs (November 2023) is before endsAt: still firing.
        status: AlertStatus.FIRING,
        endsAtUnixMs: Date.parse("2024-05-01T12:05:00Z"),
        severity: 2,
        source: "10.0.0.1:9100",
        name: "HighCPU",
        eventTimeUnixMs: startsAtMs,
        context: {
          job: "node",
          team: "infra",
          "annotation.summary": "CPU above 90%",
          "annotation.runbook_url": "https://runbooks/cpu",
          generatorURL: "http://prometheus:9090/graph?g0.expr=cpu",
          endsAt: "2024-05-01T12:05:00Z",
        },
      },
    ]);
  });

  test.each([
    ["critical", 4],
    ["HIGH", 3],
    ["medium", 2],
    ["warning", 2],
    ["Low", 1],
    ["info", 1],
    ["page", 4],
    ["Error", 3],
  ])("severity %s -> %d", (label, severity) => {
    const { alerts } = map([{ labels: { alertname: "a", instance: "i", severity: label } }]);
    expect(alerts[0]?.severity).toBe(severity);
    expect(alerts[0]?.context).toEqual({});
  });

  test("a missing or unmapped severity gets the default; an unmapped value is kept in context", () => {
    const { alerts, rejected } = map([
      { labels: { alertname: "a", instance: "i" } },
      { labels: { alertname: "a", instance: "i", severity: "none" } },
    ]);
    expect(rejected).toEqual([]);
    expect(alerts.map((alert) => [alert.severity, alert.context])).toEqual([
      [2, {}],
      [2, { severity: "none" }],
    ]);
  });

  test("the severity mapping and default come from INGEST_SEVERITY_MAP and INGEST_SEVERITY_DEFAULT", () => {
    const mapping = alertmanagerMappingFromEnv({
      INGEST_SEVERITY_MAP: "P1=critical, warning=HIGH",
      INGEST_SEVERITY_DEFAULT: "low",
    });
    const labels = (severity?: string) => ({ labels: { alertname: "a", instance: "i", severity } });
    const { alerts } = mapWith([labels("p1"), labels("WARNING"), labels("nope"), labels("info")], mapping);
    expect(alerts.map((alert) => alert.severity)).toEqual([4, 3, 1, 1]);
  });

  test.each([
    [{ INGEST_SEVERITY_MAP: "page=URGENT" }, "INGEST_SEVERITY_MAP"],
    [{ INGEST_SEVERITY_MAP: "page" }, "INGEST_SEVERITY_MAP"],
    [{ INGEST_SEVERITY_DEFAULT: "none" }, "INGEST_SEVERITY_DEFAULT"],
    [{ INGEST_SOURCE_DEFAULT: "a\u0000b" }, "INGEST_SOURCE_DEFAULT"],
  ])("a bad setting %p is refused at start", (env, variable) => {
    let refused: unknown;
    try {
      alertmanagerMappingFromEnv(env);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).variable).toBe(variable);
  });

  test("the source label is configurable and falls back to job", () => {
    const labels = { alertname: "a", severity: "low", instance: "i", job: "j", cluster: "c" };
    expect(map([{ labels }], "cluster").alerts[0]?.source).toBe("c");
    const fallback = map([{ labels }], "pod").alerts[0];
    expect(fallback?.source).toBe("j");
    // The label that became the source is not repeated in context; the others are.
    expect(fallback?.context).toEqual({ instance: "i", cluster: "c" });
  });

  test("without instance or job (or with empty ones) the source is INGEST_SOURCE_DEFAULT", () => {
    const alerts = [
      { labels: { alertname: "a", severity: "low" } },
      { labels: { alertname: "a", severity: "low", instance: "", job: "" } },
    ];
    expect(map(alerts).alerts.map((alert) => alert.source)).toEqual(["unknown", "unknown"]);
    expect(mapWith(alerts, { sourceDefault: "prometheus" }).alerts[0]?.source).toBe("prometheus");
  });

  test("without startsAt (or with Go's zero time) the event time is when it was received", () => {
    const labels = { alertname: "a", severity: "low", instance: "i" };
    for (const startsAt of [undefined, "0001-01-01T00:00:00Z"]) {
      const [alert] = map([{ labels, startsAt, endsAt: "0001-01-01T00:00:00Z" }]).alerts;
      expect(alert?.eventTimeUnixMs).toBe(options.nowMs);
      expect(alert?.alertId).toBe(`am-${labelSetFingerprint(new Map(Object.entries(labels)))}`);
      expect(alert?.status).toBe(AlertStatus.FIRING);
      expect(alert?.endsAtUnixMs).toBeUndefined();
      expect(alert?.context).toEqual({});
    }
  });

  test("the id is the fingerprint alone: re-sends and a new startsAt are the same alert", () => {
    const again = map([
      prometheusAlert,
      { ...prometheusAlert, endsAt: "2024-05-01T12:09:00Z" },
      { ...prometheusAlert, startsAt: "2024-05-01T13:00:00Z" },
      { ...prometheusAlert, startsAt: undefined },
    ]).alerts;
    expect(new Set(again.map((alert) => alert.alertId))).toEqual(new Set(["am-8708ff86d4351740"]));
    const other = map([{ ...prometheusAlert, labels: { ...prometheusAlert.labels, team: "db" } }]).alerts;
    expect(other[0]?.alertId).not.toBe("am-8708ff86d4351740");
  });

  test("endsAt in the past when received: resolved, with or without startsAt", () => {
    const labels = { alertname: "a", instance: "i" };
    const endsAt = new Date(options.nowMs - 1000).toISOString();
    const { alerts } = map([
      { labels, endsAt },
      { labels, startsAt: "2023-11-14T00:00:00Z", endsAt },
      { labels, endsAt: new Date(options.nowMs + 60_000).toISOString() },
    ]);
    expect(alerts.map((alert) => [alert.status, alert.endsAtUnixMs])).toEqual([
      [AlertStatus.RESOLVED, options.nowMs - 1000],
      [AlertStatus.RESOLVED, options.nowMs - 1000],
      [AlertStatus.FIRING, options.nowMs + 60_000],
    ]);
  });

  test("names every bad field of each rejected alert, and maps the others", () => {
    const body = [
      { labels: { alertname: "a", instance: "i" } },
      { labels: { alertname: "a", instance: "i", severity: "urgent" } },
      { labels: { severity: "low" } },
      { labels: { alertname: "a", severity: "low", instance: 5 }, annotations: ["x"] },
      { labels: { alertname: "a", severity: "low", instance: "i" }, startsAt: "yesterday" },
      "alert",
      { annotations: {} },
    ];
    expect(fieldErrors(body)).toEqual({
      "[2].labels.alertname": "required",
      "[3].labels.instance": "expected a string, got number",
      "[3].annotations": "expected an object of strings, got array",
      "[4].startsAt": "expected an RFC 3339 timestamp with a zone, e.g. 2024-05-01T12:00:00Z",
      "[5].alert": "expected an alert object, got string",
      "[6].labels": "required",
    });
    expect(mapAlertmanagerAlerts(body, options).alerts.map(({ index }) => index)).toEqual([0, 1]);
  });

  test("NUL and unpaired surrogates are refused in label names and values, annotations and generatorURL", () => {
    // Parsed from raw JSON, as a hostile sender's escapes arrive.
    const body = JSON.parse(`[
      {"labels": {"alertname": "A", "severity": "low", "instance": "i", "db_password": "hunt\\u0000er2"}},
      {"labels": {"alertname": "A\\ud800", "severity": "low", "instance": "i"}},
      {"labels": {"alertname": "A", "severity": "low", "instance": "i", "te\\u0000am": "x"}},
      {"labels": {"alertname": "A", "severity": "low", "instance": "\\udc00i"}, "annotations": {"s": "\\ud83d"}},
      {"labels": {"alertname": "A", "severity": "low", "instance": "i"}, "generatorURL": "http://p/\\u0000"},
      {"labels": {"alertname": "A", "severity": "low", "instance": "i", "ok": "fire \\ud83d\\udd25"}}
    ]`);
    const { alerts } = map(body);
    expect(fieldErrors(body)).toEqual({
      "[0].labels.db_password": "contains a NUL character at position 4",
      "[1].labels.alertname": "contains an unpaired surrogate at position 1",
      "[2].labels.te\u0000am": "name contains a NUL character at position 2",
      "[3].labels.instance": "contains an unpaired surrogate at position 0",
      "[3].annotations.s": "contains an unpaired surrogate at position 0",
      "[4].generatorURL": "contains a NUL character at position 9",
    });
    // A paired surrogate (an emoji) is ordinary text.
    expect(alerts.map((alert) => alert.context.ok)).toEqual(["fire 🔥"]);
  });

  test("the body must be an array", () => {
    expect(fieldErrors({ labels: {} })).toEqual({ body: "expected an array of alerts, got object" });
  });
});
