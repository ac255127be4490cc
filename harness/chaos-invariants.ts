/**
 * The invariants every chaos run must keep, asserted over its report with counted numbers: each
 * expected notification has exactly one row, SENT, and reached the sink, any repeat there with the
 * same Idempotency-Key, and (grouped) every group Idempotency-Key with one set of alerts. Shared by the single-broker and the cluster chaos tests.
 */
import { expect } from "bun:test";
import type { ChaosReport } from "./chaos.ts";

export type ChaosCounts = Pick<
  ChaosReport,
  | "expected"
  | "lostRows"
  | "duplicateRows"
  | "unexpectedRows"
  | "rows"
  | "statusCounts"
  | "lostAtSink"
  | "unexpectedAtSink"
  | "sinkDistinct"
  | "repeatsWithOtherKey"
  | "groupKeysWithOtherContent"
  | "settledAfterLastFaultS"
  | "violations"
>;

/** `expectedMin` keeps a run that expected too few notifications from passing for want of data. */
export function expectChaosInvariants(report: ChaosCounts, expectedMin: number): void {
  expect(report.expected).toBeGreaterThanOrEqual(expectedMin);
  expect(report.lostRows).toBe(0);
  expect(report.duplicateRows).toBe(0);
  expect(report.unexpectedRows).toBe(0);
  expect(report.rows).toBe(report.expected);
  expect(report.statusCounts).toEqual({ SENT: report.expected });
  expect(report.lostAtSink).toBe(0);
  expect(report.unexpectedAtSink).toBe(0);
  expect(report.sinkDistinct).toBe(report.expected);
  expect(report.repeatsWithOtherKey).toBe(0);
  expect(report.groupKeysWithOtherContent).toBe(0);
  expect(report.settledAfterLastFaultS).toBeDefined();
  expect(report.violations).toEqual([]);
}
