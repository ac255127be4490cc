import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  alertmanagerGroupDefaults,
  deliveryRoute,
  groupIdempotencyKey,
  groupKey,
  groupLabels,
  labelValue,
  resolveGrouping,
} from "./grouping.ts";

const client = "6f1c1f4e-2a4b-4e0e-9d8e-0c7b1f0e5a11";
const alert = {
  severity: "HIGH",
  source: "billing-api",
  name: "cpu-high",
  context: { region: "eu-west-1", rate: 0.5 },
};

describe("resolveGrouping", () => {
  test("no policy or an empty group_by: ungrouped, one message per alert", () => {
    expect(resolveGrouping(undefined, alertmanagerGroupDefaults)).toBeUndefined();
    expect(
      resolveGrouping(
        { groupBy: [], groupWaitMs: 5, groupIntervalMs: 5, groupAlertsMax: 5 },
        alertmanagerGroupDefaults,
      ),
    ).toBeUndefined();
  });

  test("absent settings take the defaults, names are sorted and deduplicated", () => {
    expect(resolveGrouping({ groupBy: ["source", "region", "source"] }, alertmanagerGroupDefaults)).toEqual({
      groupBy: ["region", "source"],
      groupWaitMs: 30_000,
      groupIntervalMs: 300_000,
      groupAlertsMax: 100,
    });
    expect(
      resolveGrouping(
        { groupBy: ["source"], groupWaitMs: 10n, groupIntervalMs: 1000n, groupAlertsMax: 3 },
        { groupWaitMs: 1, groupIntervalMs: 2, groupAlertsMax: 4 },
      ),
    ).toEqual({ groupBy: ["source"], groupWaitMs: 10, groupIntervalMs: 1000, groupAlertsMax: 3 });
  });

  test("a wait of 0 is kept (send at once); an interval or cap of 0 takes the default", () => {
    expect(
      resolveGrouping(
        { groupBy: ["name"], groupWaitMs: 0n, groupIntervalMs: 0n, groupAlertsMax: 0 },
        alertmanagerGroupDefaults,
      ),
    ).toEqual({ groupBy: ["name"], groupWaitMs: 0, groupIntervalMs: 300_000, groupAlertsMax: 100 });
  });
});

describe("labels", () => {
  test("severity, source, name (or alertname) are fields, anything else a context key", () => {
    expect(labelValue(alert, "severity")).toBe("HIGH");
    expect(labelValue(alert, "source")).toBe("billing-api");
    expect(labelValue(alert, "name")).toBe("cpu-high");
    expect(labelValue(alert, "alertname")).toBe("cpu-high");
    expect(labelValue(alert, "region")).toBe("eu-west-1");
    expect(labelValue(alert, "rate")).toBe("0.5");
    expect(labelValue(alert, "missing")).toBe("");
    expect(groupLabels(alert, ["region", "source"])).toEqual({ region: "eu-west-1", source: "billing-api" });
  });

  test("a group's labels are named as its alerts' labels: name is alertname there", () => {
    expect(groupLabels(alert, ["name", "severity"])).toEqual({ alertname: "cpu-high", severity: "HIGH" });
    expect(groupLabels(alert, ["alertname"])).toEqual(groupLabels(alert, ["name"]));
  });
});

describe("groupKey", () => {
  const settings = {
    groupBy: ["source"],
    groupWaitMs: 30_000,
    groupIntervalMs: 300_000,
    groupAlertsMax: 100,
  };

  test("matches the documented encoding (test vector)", () => {
    const field = (text: string) => {
      const bytes = Buffer.from(text, "utf8");
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    };
    const count = Buffer.alloc(4);
    count.writeUInt32BE(1);
    const expected = createHash("sha256")
      .update(
        Buffer.concat([
          field(client),
          field("30000"),
          field("300000"),
          field("100"),
          count,
          field("source"),
          field("billing-api"),
        ]),
      )
      .digest("hex")
      .slice(0, 32);
    expect(groupKey(client, settings, { source: "billing-api" })).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{32}$/);
  });

  test("differs by client, settings and values; length prefixes keep fields apart", () => {
    const base = groupKey(client, settings, { source: "billing-api" });
    expect(groupKey("00000000-0000-4000-8000-000000000000", settings, { source: "billing-api" })).not.toBe(
      base,
    );
    expect(groupKey(client, { ...settings, groupIntervalMs: 1000 }, { source: "billing-api" })).not.toBe(
      base,
    );
    expect(groupKey(client, settings, { source: "billing-ap" })).not.toBe(base);
    const two = { ...settings, groupBy: ["a", "b"] };
    expect(groupKey(client, two, { a: "x", b: "yz" })).not.toBe(groupKey(client, two, { a: "xy", b: "z" }));
  });

  test("group_by name: one key per alert name, read from the labels' alertname", () => {
    const byName = { ...settings, groupBy: ["name", "source"] };
    const keyOf = (name: string) => groupKey(client, byName, groupLabels({ ...alert, name }, byName.groupBy));
    expect(keyOf("cpu-high")).not.toBe(keyOf("disk-full"));
    expect(keyOf("cpu-high")).toBe(keyOf("cpu-high"));
  });

  test("asserts group_by is set", () => {
    expect(() => groupKey(client, { ...settings, groupBy: [] }, {})).toThrow("group_by");
  });

  test("the Idempotency-Key names the group, its incarnation and the window", () => {
    expect(groupIdempotencyKey("abc", 7, 1_767_225_600_000)).toBe("group-abc-1767225600000-7");
    // A group recreated after retention deleted it counts its windows from 0 again, under another key.
    expect(groupIdempotencyKey("abc", 0, 1_767_225_600_001)).not.toBe(
      groupIdempotencyKey("abc", 0, 1_767_225_600_000),
    );
  });

  test("a group created before migration 000022 (no incarnation) keeps its key", () => {
    expect(groupIdempotencyKey("abc", 7, null)).toBe("group-abc-7");
  });

  test("asserts integral window numbers and incarnations", () => {
    expect(() => groupIdempotencyKey("abc", Number.NaN, null)).toThrow("window number");
    expect(() => groupIdempotencyKey("abc", 0, Number.NaN)).toThrow("incarnation");
  });
});

describe("deliveryRoute", () => {
  /** The documented hash: each field length-prefixed (uint32 big-endian) UTF-8, SHA-256's first 128 bits. */
  const hash = (fields: string[]) => {
    const hasher = new Bun.CryptoHasher("sha256");
    for (const field of fields) {
      const bytes = new TextEncoder().encode(field);
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, bytes.length);
      hasher.update(length);
      hasher.update(bytes);
    }
    return hasher.digest("hex").slice(0, 32);
  };

  test("no grouping: the empty route", () => {
    expect(deliveryRoute(undefined)).toBe("");
    expect(deliveryRoute({ groupBy: [] })).toBe("");
    expect(deliveryRoute({ groupBy: [], groupWaitMs: 5 })).toBe("");
  });

  test("the documented bytes: sorted unique names, then each setting as text, Alertmanager's when absent", () => {
    const expected = hash(["name", "source", "0", "300000", "7"]);
    expect(deliveryRoute({ groupBy: ["source", "name", "source"], groupWaitMs: 0, groupAlertsMax: 7 })).toBe(
      expected,
    );
  });

  test("equal however the settings are typed; any setting or name changes it", () => {
    const base = deliveryRoute({ groupBy: ["source"], groupWaitMs: 30_000 });
    expect(deliveryRoute({ groupBy: ["source"], groupWaitMs: 30_000n })).toBe(base);
    // Absent is Alertmanager's default, whatever the stage's: the same route as spelling it out.
    expect(deliveryRoute({ groupBy: ["source"] })).toBe(base);
    expect(deliveryRoute({ groupBy: ["source"], groupWaitMs: 0 })).not.toBe(base);
    expect(deliveryRoute({ groupBy: ["source"], groupWaitMs: 30_000, groupIntervalMs: 1000 })).not.toBe(base);
    expect(deliveryRoute({ groupBy: ["source", "team"], groupWaitMs: 30_000 })).not.toBe(base);
  });

  test("a rule with mute windows: over muted_rule, the grouping's route and the rule id", () => {
    const ruleId = "00000000-0000-4000-8000-00000000000a";
    expect(deliveryRoute({ groupBy: [], muteRuleId: ruleId })).toBe(hash(["muted_rule", "", ruleId]));
    const grouped = deliveryRoute({ groupBy: ["source"] });
    expect(deliveryRoute({ groupBy: ["source"], muteRuleId: ruleId })).toBe(
      hash(["muted_rule", grouped, ruleId]),
    );
    expect(deliveryRoute({ groupBy: ["source"], muteRuleId: "" })).toBe(grouped);
  });
});
