import { describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { deriveAlertId } from "../../core/alert-id.ts";
import { AlertNewSchema } from "../../gen/alerting/v1/alert_pb.ts";
import { alertRecord, createAlertStream, type StreamOptions } from "./alerts.ts";

const options: StreamOptions = {
  seed: 1234,
  runId: "run",
  severities: [
    { value: 3, weight: 3 },
    { value: 1, weight: 1 },
  ],
  sources: [
    { value: "api", weight: 5 },
    { value: "db", weight: 1 },
  ],
  names: [
    { value: "cpu", weight: 1 },
    { value: "disk", weight: 1 },
  ],
  context: { env: "load" },
  hashedIds: false,
  scope: "shared:load",
};

const fixedClock = () => 1_700_000_000_000;
const take = (streamOptions: StreamOptions, count: number) => {
  const next = createAlertStream(streamOptions, fixedClock);
  return Array.from({ length: count }, next);
};

describe("createAlertStream", () => {
  test("the same seed and options give the same stream; another seed another", () => {
    expect(take(options, 1000)).toEqual(take(options, 1000));
    expect(take({ ...options, seed: 1235 }, 1000)).not.toEqual(take(options, 1000));
  });

  test("ids are <runId>-<seq>, fields come from the lists, context from --context", () => {
    const alerts = take(options, 3);
    expect(alerts.map((a) => a.alertId)).toEqual(["run-0", "run-1", "run-2"]);
    for (const alert of alerts) {
      expect([1, 3]).toContain(alert.severity);
      expect(["api", "db"]).toContain(alert.source);
      expect(["cpu", "disk"]).toContain(alert.name);
      expect(alert.context).toEqual({ env: "load" });
      expect(alert.eventTimeUnixMs).toBe(1_700_000_000_000);
      expect(alert.scope).toBe("shared:load");
    }
  });

  test("follows the weights", () => {
    const alerts = take(options, 20_000);
    const high = alerts.filter((a) => a.severity === 3).length / alerts.length;
    const api = alerts.filter((a) => a.source === "api").length / alerts.length;
    expect(Math.abs(high - 0.75)).toBeLessThan(0.02);
    expect(Math.abs(api - 5 / 6)).toBeLessThan(0.02);
  });

  test("--hashed-ids leaves the id empty and keys the record by the id the evaluator derives", () => {
    const [alert] = take({ ...options, hashedIds: true }, 1);
    if (!alert) throw new Error("no alert");
    expect(alert.alertId).toBe("");
    const record = alertRecord(alert, "topic");
    expect(record.key).toBe(
      deriveAlertId(alert.severity, alert.source, alert.name, BigInt(alert.eventTimeUnixMs)),
    );
    expect(fromBinary(AlertNewSchema, record.value as Uint8Array).alertId).toBe("");
  });
});

describe("alertRecord", () => {
  test("encodes an AlertNew keyed by its id", () => {
    const record = alertRecord(
      { alertId: "a-1", severity: 4, source: "db", name: "disk", context: { k: "v" }, eventTimeUnixMs: 5 },
      "alerts.test",
    );
    expect(record.topic).toBe("alerts.test");
    expect(record.key).toBe("a-1");
    const decoded = fromBinary(AlertNewSchema, record.value as Uint8Array);
    expect(decoded).toMatchObject({
      alertId: "a-1",
      severity: 4,
      source: "db",
      name: "disk",
      context: { k: "v" },
      eventTimeUnixMs: 5n,
      schemaVersion: 1,
      scope: "",
    });
    const scoped = alertRecord(
      {
        alertId: "a-2",
        severity: 1,
        source: "s",
        name: "n",
        context: {},
        eventTimeUnixMs: 5,
        scope: "shared:ops",
      },
      "t",
    );
    expect(fromBinary(AlertNewSchema, scoped.value as Uint8Array).scope).toBe("shared:ops");
  });
});
