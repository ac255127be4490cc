import { expect, test } from "bun:test";
import { defaultPolicyColumns as defaults } from "../../adapters/rule-source.ts";
import { deliverySummary } from "./rule-delivery.ts";

test("the rules table's summary: every setting a rule sets, its group timing with its grouping", () => {
  expect(deliverySummary(defaults)).toBe("defaults");
  expect(deliverySummary({ ...defaults, group_by: ["source"] })).toBe("grouped by source");
  expect(
    deliverySummary({
      ...defaults,
      group_by: ["source", "team"],
      group_wait_ms: 10_000,
      group_interval_ms: 60_000,
      group_alerts_max: 50,
      repeat_interval_ms: 60_000,
      mute_windows: ["* 01:00-02:00", "sunday 00:00-24:00"],
    }),
  ).toBe("grouped by source, team (wait 10 s, every 60 s, 50 listed) · repeat 60 s · 2 mute windows");
});
