/**
 * Chaos, compressed: the fault injector of `./dev chaos` (harness/chaos.ts) with the spec's minimums
 * and the invariants asserted with counted numbers.
 *
 * At least 200,000 alerts flow through every stage (the stream goes on until the last fault has
 * recovered) while it injects 10 kill -9s (evaluator, aggregator, sender and rule-updater each at
 * least once, every one restarted with the same environment and group), one Kafka broker restart,
 * one Postgres restart and a Redis pause. To fit in about 5 minutes on 2 cores, most alerts match no
 * rule: one alert in 30 matches two clients and one more matches a third, so the evaluator reads
 * 200k+ alerts while the database and the sink see about 20k notifications. Within 60 s of the last
 * fault every expected notification must have exactly one row, SENT, and have reached the sink, with
 * any repeat there carrying the same Idempotency-Key.
 *
 * It disturbs the shared broker, Postgres and Redis; whatever happens, the finally blocks bring all
 * three back (runChaos restores them itself, and so does this file).
 */
import { afterAll, expect, test } from "bun:test";
import { type ChaosReport, formatReport, restoreServices, runChaos } from "../../harness/chaos.ts";
import { expectChaosInvariants } from "../../harness/chaos-invariants.ts";
import { useTestSchema } from "../../harness/postgres.ts";

const db = useTestSchema("chaos");
const kills = 10;
let report: ChaosReport | undefined;

afterAll(async () => {
  // runChaos already restores in its own finally; this covers a failure before it got that far.
  const restored = await restoreServices();
  if (restored.length > 0) console.log(`chaos test: restored ${restored.join(", ")}`);
}, 240_000);

test("200k alerts through kills and infrastructure restarts: no loss, no duplicate rows", async () => {
  try {
    report = await runChaos({
      postgresUrl: db.url,
      alerts: 200_000,
      kills,
      seed: Number(process.env.CHAOS_SEED ?? 7),
      ratePerS: 1000,
      matchEvery: 30,
      settleMs: 60_000,
      leaseMs: 5000,
      schedulerIntervalMs: 200,
    });
  } finally {
    await restoreServices();
  }
  console.log(formatReport(report));

  expect(report.alertsSent).toBeGreaterThanOrEqual(200_000);
  // Every fault happened, each stage was killed at least once, and progress resumed after each one.
  const injected = report.faults.filter((f) => !f.skipped);
  const killed = report.faults.filter((f) => f.kind === "kill");
  expect(killed).toHaveLength(kills);
  expect(new Set(killed.map((f) => f.target))).toEqual(
    new Set(["evaluator", "aggregator", "sender", "rule-updater"]),
  );
  expect(report.faults.filter((f) => f.kind === "postgres-restart" && !f.skipped)).toHaveLength(1);
  expect(report.faults.filter((f) => f.kind === "redis-pause" && !f.skipped)).toHaveLength(1);
  if (!process.env.KAFKA_BROKERS)
    expect(report.faults.filter((f) => f.kind === "kafka-restart" && !f.skipped)).toHaveLength(1);
  expect(injected.filter((f) => f.recoveryMs === undefined).map((f) => `${f.kind} ${f.target}`)).toEqual([]);

  // The invariants, counted.
  expectChaosInvariants(report, 20_000);
  expect(report.settledAfterLastFaultS as number).toBeLessThanOrEqual(60);
}, 600_000);
