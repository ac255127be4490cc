import { describe, expect, test } from "bun:test";
import { type ChaosCounts, expectChaosInvariants } from "./chaos-invariants.ts";

const passed: ChaosCounts = {
  expected: 100,
  lostRows: 0,
  duplicateRows: 0,
  unexpectedRows: 0,
  rows: 100,
  statusCounts: { SENT: 100 },
  lostAtSink: 0,
  unexpectedAtSink: 0,
  sinkDistinct: 100,
  repeatsWithOtherKey: 0,
  groupKeysWithOtherContent: 0,
  settledAfterLastFaultS: 3,
  violations: [],
};

describe("expectChaosInvariants", () => {
  test("a run that kept every invariant passes", () => {
    expectChaosInvariants(passed, 100);
  });

  const broken: [string, Partial<ChaosCounts>][] = [
    ["too few expected", { expected: 99, rows: 99, statusCounts: { SENT: 99 }, sinkDistinct: 99 }],
    ["a lost row", { lostRows: 1 }],
    ["a duplicate row", { duplicateRows: 1 }],
    ["an unexpected row", { unexpectedRows: 1 }],
    ["rows short of expected", { rows: 99 }],
    ["a row not SENT", { statusCounts: { SENT: 99, FAILED: 1 } }],
    ["lost at the sink", { lostAtSink: 1 }],
    ["unexpected at the sink", { unexpectedAtSink: 1 }],
    ["sink short of expected", { sinkDistinct: 99 }],
    ["a repeat with another key", { repeatsWithOtherKey: 1 }],
    ["a group key with two sets of alerts", { groupKeysWithOtherContent: 1 }],
    ["never settled", { settledAfterLastFaultS: undefined }],
    ["a violation", { violations: ["x"] }],
  ];
  test.each(broken)("%s fails", (_, change) => {
    expect(() => expectChaosInvariants({ ...passed, ...change }, 100)).toThrow();
  });
});
