/**
 * Scale-out on a replicated cluster: `./dev chaos --cluster` as a test, its invariants asserted with
 * counted numbers.
 *
 * Three brokers of `./dev cluster` (started here if they are not running, stopped again then), the
 * run's topics with three replicas and min.insync.replicas 2, two copies of every consuming stage in
 * one group each. At least 30,000 alerts stream at 500/s while one copy of each consuming stage and
 * the broker leading the most partitions are killed with kill -9. Each killed copy stays down until
 * the other copy holds all its partitions, which must happen within the consumer session timeout
 * plus one rebalance; the broker stays down until every partition is led by another broker and
 * alerts flow again. Then everything expected has exactly one row, SENT, and reached the sink, any
 * repeat there with the same Idempotency-Key.
 *
 * The run needs its own process: every Kafka client reads KAFKA_BROKERS when it loads, and this
 * suite's process points at the dev broker. It leaves the dev broker, Postgres and Redis alone.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChaosReport, takeoverBoundMs } from "../../harness/chaos.ts";
import { expectChaosInvariants } from "../../harness/chaos-invariants.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import {
  clusterBrokers,
  clusterReplicationFactor,
  ensureCluster,
  stopCluster,
} from "../../scripts/cluster.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;
const db = useTestSchema("cluster_chaos");
const scratch = mkdtempSync(join(tmpdir(), "cluster-chaos-"));
let stopAfterwards = false;

afterAll(async () => {
  if (stopAfterwards) await stopCluster();
  rmSync(scratch, { recursive: true, force: true });
}, 120_000);

test("two copies of every stage on three brokers: kill -9 of a copy of each and of a broker", async () => {
  const cluster = await ensureCluster();
  stopAfterwards = cluster.startedNow;
  const reportPath = join(scratch, "report.json");
  const child = Bun.spawn(
    [process.execPath, "harness/chaos.ts", "--cluster", "--seed", "3", "--report-json", reportPath],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        POSTGRES_URL: db.url,
        KAFKA_BROKERS: clusterBrokers,
        TOPIC_REPLICATION_FACTOR: String(clusterReplicationFactor),
      },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const exitCode = await child.exited;
  const report = JSON.parse(readFileSync(reportPath, "utf8")) as ChaosReport;

  expect(report.cluster?.replicationFactor).toBe(3);
  expect(report.cluster?.instancesPerStage).toBe(2);
  expect(report.alertsSent).toBeGreaterThanOrEqual(30_000);

  // One copy of each consuming stage killed; the other held all its partitions within the bound.
  const kills = report.faults.filter((f) => f.kind === "kill");
  expect(kills.map((f) => f.target).sort()).toEqual(["aggregator", "evaluator", "rule-updater", "sender"]);
  for (const kill of kills) {
    expect(kill.partitionsMoved).toBeGreaterThan(0);
    expect(kill.takeoverMs).toBeDefined();
    expect(kill.takeoverMs as number).toBeLessThanOrEqual(takeoverBoundMs);
    expect(kill.recoveryMs).toBeDefined();
    expect(kill.rejoinMs).toBeDefined();
  }
  // The broker kill moved the leadership of the partitions it led, and alerts flowed again.
  const [brokerKill, ...moreBrokerKills] = report.faults.filter((f) => f.kind === "broker-kill");
  expect(moreBrokerKills).toEqual([]);
  expect(brokerKill?.partitionsMoved).toBeGreaterThan(0);
  expect(brokerKill?.takeoverMs).toBeDefined();
  expect(brokerKill?.recoveryMs).toBeDefined();
  expect(brokerKill?.rejoinMs).toBeDefined();

  // The invariants, counted.
  expectChaosInvariants(report, 9000);
  expect(exitCode).toBe(0);
}, 600_000);
