import { describe, expect, test } from "bun:test";
import { parseV1Alerts } from "./ingest-v1.ts";

const nowMs = 1_700_000_000_000;
const valid = { severity: "HIGH", source: "api", name: "cpu" };

describe("parseV1Alerts", () => {
  test("one alert with defaults: no id (derived later), no context, received now", () => {
    const { alerts, errors } = parseV1Alerts(valid, nowMs);
    expect(errors.count).toBe(0);
    expect(alerts).toEqual([
      { alertId: "", severity: 3, source: "api", name: "cpu", context: {}, eventTimeUnixMs: nowMs },
    ]);
  });

  test("an array, with ids, context and both event time forms", () => {
    const { alerts, errors } = parseV1Alerts(
      [
        { ...valid, alert_id: "a-1", context: { region: "eu" }, event_time: "2024-05-01T14:00:00+02:00" },
        { ...valid, event_time: 1_714_564_800_000 },
      ],
      nowMs,
    );
    expect(errors.count).toBe(0);
    expect(alerts.map((a) => [a.alertId, a.eventTimeUnixMs, a.context])).toEqual([
      ["a-1", 1_714_564_800_000, { region: "eu" }],
      ["", 1_714_564_800_000, {}],
    ]);
  });

  test("names each bad field by its path", () => {
    const { alerts, errors } = parseV1Alerts(
      [
        valid,
        { ...valid, severity: "high" },
        { severity: 3, source: "", name: "x".repeat(1025) },
        { ...valid, context: { ok: "1", bad: 2 }, event_time: "2024-05-01", extra: true },
        { ...valid, event_time: -1, alert_id: 7 },
        null,
      ],
      nowMs,
    );
    expect(alerts).toHaveLength(1);
    expect(errors.toJSON()).toEqual({
      "[1].severity": 'unknown severity "high", expected one of LOW|MEDIUM|HIGH|CRITICAL',
      "[2].severity": "expected a string, got number",
      "[2].source": "must not be empty",
      "[2].name": "longer than 1024 characters",
      "[3].extra": "unknown field",
      "[3].context.bad": "expected a string, got number",
      "[3].event_time": "expected an RFC 3339 timestamp with a zone, e.g. 2024-05-01T12:00:00Z",
      "[4].alert_id": "expected a string, got number",
      "[4].event_time": "expected unix milliseconds: an integer from 0",
      "[5]": "expected an alert object, got null",
    });
  });

  test("a single object's fields have no index; missing fields are required", () => {
    expect(parseV1Alerts({}, nowMs).errors.toJSON()).toEqual({
      severity: "required",
      source: "required",
      name: "required",
    });
    expect(parseV1Alerts("alert", nowMs).errors.toJSON()).toEqual({
      body: "expected an alert object or an array of alerts, got string",
    });
  });

  test("NUL and unpaired surrogates are refused in every string field, context keys included", () => {
    // Parsed from raw JSON: the escapes become the very characters Postgres cannot store.
    const body = JSON.parse(`[
      {"severity": "HIGH", "source": "a\\u0000", "name": "\\ud800", "alert_id": "id\\udfff"},
      {"severity": "HIGH", "source": "a", "name": "n", "context": {"db_password": "hunt\\u0000er2"}},
      {"severity": "HIGH", "source": "a", "name": "n", "context": {"k\\ud800": "v"}},
      {"severity": "HIGH", "source": "a", "name": "n", "context": {"ok": "\\ud83d\\udd25"}}
    ]`);
    const { alerts, errors } = parseV1Alerts(body, nowMs);
    expect(errors.toJSON()).toEqual({
      "[0].source": "contains a NUL character at position 1",
      "[0].name": "contains an unpaired surrogate at position 0",
      "[0].alert_id": "contains an unpaired surrogate at position 2",
      "[1].context.db_password": "contains a NUL character at position 4",
      "[2].context.k\ud800": "key contains an unpaired surrogate at position 1",
    });
    expect(alerts.map((alert) => alert.context)).toEqual([{ ok: "🔥" }]);
  });

  test("at most 100 field errors are listed, all are counted", () => {
    const { errors } = parseV1Alerts(
      Array.from({ length: 200 }, () => ({})),
      nowMs,
    );
    expect(errors.count).toBe(600);
    expect(Object.keys(errors.toJSON())).toHaveLength(100);
  });
});
