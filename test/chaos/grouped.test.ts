/**
 * Chaos with grouping on (issue 17): the single-broker chaos run of chaos.test.ts, shorter, with every
 * chaos rule grouping by source, so the sender's scheduler sends group windows under every fault:
 * kill -9 of each consuming stage once, a Kafka broker restart, a Postgres restart and a Redis pause.
 * Every expected notification must have exactly one row, SENT, and have reached the sink in a group
 * message, and every group Idempotency-Key must have carried one set of alerts, however often it
 * was repeated.
 */
import { afterAll, expect, test } from "bun:test";
import { type ChaosReport, formatReport, restoreServices, runChaos } from "../../harness/chaos.ts";
import { expectChaosInvariants } from "../../harness/chaos-invariants.ts";
import { useTestSchema } from "../../harness/postgres.ts";

const db = useTestSchema("chaos_grouped");
const kills = 4;
let report: ChaosReport | undefined;

afterAll(async () => {
  const restored = await restoreServices();
  if (restored.length > 0) console.log(`grouped chaos test: restored ${restored.join(", ")}`);
}, 240_000);

test("grouped by source through kills and infrastructure restarts: no loss, one content per group key", async () => {
  try {
    report = await runChaos({
      postgresUrl: db.url,
      alerts: 60_000,
      kills,
      seed: Number(process.env.CHAOS_SEED ?? 11),
      ratePerS: 1000,
      matchEvery: 30,
      settleMs: 60_000,
      leaseMs: 5000,
      schedulerIntervalMs: 200,
      groupBy: "source",
    });
  } finally {
    await restoreServices();
  }
  console.log(formatReport(report));

  const killed = report.faults.filter((f) => f.kind === "kill");
  expect(new Set(killed.map((f) => f.target))).toEqual(
    new Set(["evaluator", "aggregator", "sender", "rule-updater"]),
  );
  const injected = report.faults.filter((f) => !f.skipped);
  expect(injected.filter((f) => f.recoveryMs === undefined).map((f) => `${f.kind} ${f.target}`)).toEqual([]);
  expectChaosInvariants(report, 5000);
  // Grouped: far fewer messages than notifications, each key with one set of alerts (above).
  expect(report.groupMessages).toBeGreaterThan(0);
  expect(report.groupMessages).toBeLessThan(report.expected / 5);
  expect(report.settledAfterLastFaultS as number).toBeLessThanOrEqual(60);
}, 600_000);
