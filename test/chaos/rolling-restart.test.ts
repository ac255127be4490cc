/**
 * A rolling restart under load (`./dev chaos --rolling`, compressed): while alerts flow, every stage
 * in turn gets SIGTERM, must leave within 5 s with exit code 0 (finishing or abandoning its in-flight
 * batch, committing only what is durable), and is started again before the next one stops. Nothing
 * may be lost or duplicated: the same counted invariants as the chaos test.
 */
import { expect, test } from "bun:test";
import { formatReport, runChaos } from "../../harness/chaos.ts";
import { useTestSchema } from "../../harness/postgres.ts";

const db = useTestSchema("rolling_restart");
test("rolling SIGTERM restart of every stage under load: each exits 0 within 5 s, nothing lost or duplicated", async () => {
  const report = await runChaos({
    postgresUrl: db.url,
    rolling: true,
    alerts: 40_000,
    seed: 11,
    ratePerS: 1000,
    matchEvery: 5,
    settleMs: 60_000,
    leaseMs: 5000,
    schedulerIntervalMs: 200,
  });
  console.log(formatReport(report));

  const restarts = report.faults.filter((f) => f.kind === "sigterm");
  expect(restarts.map((f) => f.target).sort()).toEqual(
    ["aggregator", "evaluator", "rule-service", "rule-updater", "sender"].sort(),
  );
  expect(report.faults.filter((f) => f.kind !== "sigterm")).toEqual([]);
  for (const f of restarts) {
    expect({ stage: f.target, code: f.exit?.code }).toEqual({ stage: f.target, code: 0 });
    expect(f.exit?.afterMs as number).toBeLessThanOrEqual(5000);
    expect(f.recoveryMs).toBeDefined();
  }
  expect(report.unexpectedExits).toEqual([]);

  expect(report.alertsSent).toBeGreaterThanOrEqual(40_000);
  expect(report.expected).toBeGreaterThanOrEqual(24_000);
  expect(report.lostRows).toBe(0);
  expect(report.duplicateRows).toBe(0);
  expect(report.unexpectedRows).toBe(0);
  expect(report.statusCounts).toEqual({ SENT: report.expected });
  expect(report.lostAtSink).toBe(0);
  expect(report.unexpectedAtSink).toBe(0);
  expect(report.repeatsWithOtherKey).toBe(0);
  expect(report.violations).toEqual([]);
}, 400_000);
