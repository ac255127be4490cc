/**
 * Chaos: faults injected while a large alert stream flows through the whole pipeline, then the
 * delivery invariants checked with counted numbers.
 *
 * The pipeline is the test harness's (harness/pipeline.ts): its own topics, groups and Redis
 * prefix, every stage its own process, a webhook sink in this process (so it survives stage kills).
 * Three clients have rules on two alert names (two clients share one name), so every matching alert
 * gives a known set of (client, alert) notifications; every other alert matches no rule.
 *
 * Faults, at seeded random points of the stream's progress:
 *   - kill -9 of a consuming stage (evaluator, aggregator, sender, rule-updater; each at least once),
 *     restarted at once with the same environment and group (read back from /proc/<pid>/environ);
 *   - one Kafka broker restart (kill -9 of ./dev's broker, then `./dev infra`'s start, same data dir);
 *   - one Postgres restart (pg_ctlcluster 15 main restart);
 *   - Redis unavailable for a few seconds (CLIENT PAUSE ALL: nothing of Redis's data is lost).
 * A stage that exits by itself is restarted too (this process acts as its supervisor) and reported.
 * With `--rolling` the faults are a rolling restart instead: SIGTERM to each of the five stages in
 * turn (the next only once the previous one's successor runs and progress resumed); each must exit 0
 * within 5 s, and the same invariants must hold.
 *
 * Recovery of a fault is the time from the fault until the disturbed part progresses again and the
 * count of SENT rows grows after that: a restarted stage consumed records (the rule-updater: a rule
 * change made after its restart reached the evaluator), the broker answers and alerts flow through the
 * evaluator again, Postgres accepts writes, a rule change made during the Redis pause reached the
 * evaluator.
 *
 * With `--cluster` (run through `./dev chaos --cluster`, which points KAFKA_BROKERS at `./dev
 * cluster`'s three brokers) the topics have three replicas (min.insync.replicas 2) and every
 * consuming stage runs two copies in one group. The faults are kill -9 of one copy of each consuming
 * stage, left down until the other copy holds all its partitions (the takeover, read from the
 * survivor's "partitions assigned" log lines; it must come within the consumer session timeout plus
 * one rebalance), then restarted; and kill -9 of the broker leading the most partitions of the run's
 * topics, left down until every partition has a leader elsewhere and the stream flows again, then
 * restarted. Postgres and Redis are not disturbed.
 *
 * With `--group-by LABEL` the three clients' rules group by LABEL (issue 17; group_wait and
 * group_interval 1 s): each webhook is a group message carrying many alerts (its `alertIds`), and on
 * top of the invariants below every Idempotency-Key must always carry the same alerts (a repeated
 * group message is the same message), so every alert is in exactly one delivered group.
 *
 * Afterwards (at most `settleMs` after the last fault, or after a restarted cluster node answers
 * again if that is later): every expected notification has exactly one
 * row, every row is SENT, the sink saw each at least once, and repeats carry one Idempotency-Key.
 *
 *   bun harness/chaos.ts [--cluster] [--alerts N] [--kills N] [--seed N] [--rate N] [--match-every N]
 *                        [--group-by LABEL]
 *   ./dev chaos ...      the same (--cluster: with the cluster started and KAFKA_BROKERS set)
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  clusterBrokers,
  clusterNodePid,
  clusterReplicationFactor,
  ensureCluster,
} from "../scripts/cluster.ts";
import { ensureInfra } from "../scripts/infra.ts";
import { ensureBroker, externalBrokers, isAlive, runningBrokerPid } from "../scripts/kafka.ts";
import { capture, repoRoot, SetupError } from "../scripts/process.ts";
import { migrate } from "../src/adapters/migrations.ts";
import { connectPostgres } from "../src/adapters/postgres.ts";
import { createRandom } from "../src/core/random.ts";
import { RuleAction, RuleChangedSchema } from "../src/gen/alerting/v1/rule_pb.ts";
import {
  Admin,
  consumerSessionTimeoutMs,
  KafkaError,
  type ProduceRecord,
  Producer,
} from "../src/kafka/index.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { createLogger } from "../src/runtime/log.ts";
import { countDeliveries } from "./invariants.ts";
import { type Pipeline, startPipeline } from "./pipeline.ts";
import { type StageName, type StageProcess, startStage, stopStage } from "./stages.ts";

export type ConsumingStage = "evaluator" | "aggregator" | "sender" | "rule-updater";
export const consumingStages: readonly ConsumingStage[] = [
  "evaluator",
  "aggregator",
  "sender",
  "rule-updater",
];

export interface ChaosOptions {
  /** Alerts in the stream (each with a fixed id, so re-sends dedupe). */
  alerts: number;
  /** kill -9 faults, spread over the consuming stages (each at least once). */
  kills: number;
  seed: number;
  /** Alerts per second the producer aims for. */
  ratePerS: number;
  /**
   * One alert in `matchEvery` is named for clients A and B, one more for client C; the others match
   * no rule. So the expected notifications are 3 per `matchEvery` alerts.
   */
  matchEvery: number;
  /** How long after the last fault everything must be SENT and at the sink. */
  settleMs: number;
  /** Sender lease and scheduler interval: short, so a killed sender's leases come back quickly. */
  leaseMs: number;
  schedulerIntervalMs: number;
  /** How the broker goes down: kill -9 (default) or a controlled SIGTERM. */
  brokerStop: "kill" | "term";
  /** How long Redis stays paused. */
  redisPauseMs: number;
  /** False: stage kills only (a quick look without disturbing the shared services). */
  infraFaults: boolean;
  /**
   * A rolling restart instead of the faults above: SIGTERM to every stage once, in a seeded order,
   * each restarted before the next one stops; each must exit 0 within `gracefulExitMs`.
   */
  rolling: boolean;
  gracefulExitMs: number;
  /**
   * On `./dev cluster` (KAFKA_BROKERS must be its brokers): replicated topics, `instancesPerStage`
   * copies of every consuming stage, and the cluster faults instead of the infrastructure ones.
   */
  cluster: boolean;
  instancesPerStage: number;
  /** Partitions per event topic of the run. */
  partitions: number;
  /** Rules group by this label (severity, source, name or a context key); undefined: ungrouped. */
  groupBy: string | undefined;
  /** Progress lines; console.log by default. */
  log: (line: string) => void;
  signal?: AbortSignal;
  /** The run's database: a test file's schema (`db.url`); POSTGRES_URL by default. */
  postgresUrl?: string;
}

export const defaultChaosOptions: ChaosOptions = {
  alerts: 200_000,
  kills: 12,
  seed: 1,
  ratePerS: 1000,
  matchEvery: 10,
  settleMs: 60_000,
  leaseMs: 5000,
  schedulerIntervalMs: 200,
  brokerStop: "kill",
  redisPauseMs: 4000,
  infraFaults: true,
  rolling: false,
  gracefulExitMs: 5000,
  cluster: false,
  instancesPerStage: 1,
  partitions: 3,
  groupBy: undefined,
  log: (line) => console.log(line),
};

/** The chaos rules' grouping with --group-by: windows short enough for the run to settle. */
const chaosGroupWindowMs = 1000;

/**
 * What --cluster changes unless flags say otherwise: one kill per consuming stage (each waits out a
 * session timeout), a stream sized for three brokers and nine stage processes on two cores, and as
 * many partitions as ./dev topics makes, so each copy holds several.
 */
export const clusterChaosOptions: Partial<ChaosOptions> = {
  cluster: true,
  instancesPerStage: 2,
  partitions: 6,
  kills: 4,
  alerts: 30_000,
  ratePerS: 500,
  infraFaults: false,
};

/**
 * A survivor must hold the killed copy's partitions this soon: the session timeout, one rebalance, and
 * the survivor's next poll, which waits for the batch it is working on (a sender's deliveries took
 * 8.8 s past the session timeout once on a loaded 2-core machine).
 */
export const takeoverBoundMs = 2 * consumerSessionTimeoutMs;

/** "sigterm": a graceful stop then a restart, one stage at a time (a rolling restart). */
export type FaultKind =
  | "kill"
  | "sigterm"
  | "kafka-restart"
  | "postgres-restart"
  | "redis-pause"
  /** --cluster: kill -9 of one of the cluster's brokers, restarted once the leaders moved. */
  | "broker-kill";

export interface FaultResult {
  kind: FaultKind;
  target: string;
  /** Seconds since the stream started. */
  atS: number;
  /** Alerts acknowledged when the fault was injected. */
  atAlert: number;
  /** Until the component was back: stage restarted, broker answering, Postgres up, Redis answering. */
  downMs: number;
  /** Until progress resumed (see the header); undefined: not within the tracking timeout. */
  recoveryMs: number | undefined;
  signal: string;
  skipped?: string;
  /** For sigterm: the stage's exit code (null: still running after the grace period, killed) and how long it took. */
  exit?: { code: number | null; afterMs: number };
  /** --cluster, a stage kill: which copy. */
  instance?: number;
  /**
   * --cluster: until the killed copy's partitions were all held by the other copies (from their
   * logs), or until no partition of the run's topics was led by the killed broker. Undefined: never.
   */
  takeoverMs?: number;
  /** --cluster: partitions the killed copy held, or the killed broker led. */
  partitionsMoved?: number;
  /** --cluster: from the killed copy's restart until it held partitions again, or the node's until it answered. */
  rejoinMs?: number;
}

export interface StageExit {
  stage: string;
  code: number | null;
  atS: number;
  lastLines: string[];
}

export interface ChaosReport {
  run: string;
  seed: number;
  /** --cluster: the cluster and how the run used it. */
  cluster?: {
    brokers: string;
    replicationFactor: number;
    instancesPerStage: number;
    partitions: number;
    sessionTimeoutMs: number;
  };
  alertsSent: number;
  /** Records produced again because a batch failed while the broker was away. */
  alertsResent: number;
  sendFailures: number;
  durationS: number;
  streamS: number;
  expected: number;
  rows: number;
  duplicateRows: number;
  lostRows: number;
  unexpectedRows: number;
  statusCounts: Record<string, number>;
  notSent: number;
  sinkDeliveries: number;
  sinkDistinct: number;
  lostAtSink: number;
  repeatsAtSink: number;
  /** (client, alert) pairs whose sink deliveries carried more than one Idempotency-Key. */
  repeatsWithOtherKey: number;
  /** --group-by: group messages (distinct Idempotency-Keys) at the sink. */
  groupMessages: number;
  /** --group-by: Idempotency-Keys seen with more than one set of alerts. */
  groupKeysWithOtherContent: number;
  unexpectedAtSink: number;
  /** SUCCESS delivery rows beyond one per notification (the sender's own record of repeats). */
  extraSuccessRows: number;
  faults: FaultResult[];
  /** Seconds from the last fault until every expected notification was SENT and at the sink. */
  settledAfterLastFaultS: number | undefined;
  unexpectedExits: StageExit[];
  stopExitCodes: Record<string, number | null>;
  logsDir: string;
  /** Every broken invariant in words; empty when the run passed. */
  violations: string[];
}

const brokerRecoveryTimeoutMs = 180_000;
const trackTimeoutMs = 120_000;
const pollIntervalMs = 200;

// ---------------------------------------------------------------------------------------------
// small helpers

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && !signal?.aborted) {
    try {
      if (await check()) return true;
    } catch {
      // a service may be down right now: ask again
    }
    await Bun.sleep(pollIntervalMs);
  }
  return false;
}

/** Reads a process's environment, as exec'ed: what a restart must give its successor. */
function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const equals = entry.indexOf("=");
    if (equals > 0) env[entry.slice(0, equals)] = entry.slice(equals + 1);
  }
  return env;
}

function redisCli(...args: string[]): string[] {
  return ["redis-cli", "-u", infraUrls.redisUrl, ...args];
}

/** The pg_ctlcluster version and cluster name from the server's data directory (15/main here). */
async function postgresCluster(): Promise<[string, string]> {
  const sql = connectPostgres({ connectionsMax: 1, idleTimeoutSeconds: 1 });
  try {
    const [row] = await sql`SELECT current_setting('data_directory') AS dir`;
    const match = /\/(\d+)\/([^/]+)\/?$/.exec(String(row?.dir ?? ""));
    return match ? [match[1] as string, match[2] as string] : ["15", "main"];
  } catch {
    return ["15", "main"];
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * A broker's usual start (`./dev infra`'s or `./dev cluster up`'s: same properties, same data dir).
 * Retried while the killed one still holds the port: a JVM's leader thread shows as a zombie while
 * its other threads exit.
 */
async function startAgain<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= 60) throw error;
      await Bun.sleep(1000);
    }
  }
}

async function postgresAnswers(): Promise<boolean> {
  const url = new URL(infraUrls.postgresUrl);
  const { exitCode } = await capture([
    "pg_isready",
    "-q",
    "-h",
    url.hostname,
    "-p",
    url.port || "5432",
    "-t",
    "2",
  ]);
  return exitCode === 0;
}

async function redisAnswers(): Promise<boolean> {
  const child = Bun.spawn(redisCli("ping"), { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
  const out = await new Response(child.stdout).text();
  clearTimeout(timer);
  await child.exited;
  return out.trim() === "PONG";
}

/**
 * Brings back whatever chaos may have left down: the broker (./dev's own unless KAFKA_BROKERS is
 * set; `./dev cluster`'s nodes when KAFKA_BROKERS is the cluster), Postgres and Redis. Safe to call
 * at any time; returns what it had to do.
 */
export async function restoreServices(): Promise<string[]> {
  const actions: string[] = [];
  // A pause we set ends by itself; unpause in case this runs in the middle of one.
  await capture(redisCli("client", "unpause"));
  if (!(await redisAnswers())) {
    actions.push("redis: started");
    await capture([
      "redis-server",
      "--daemonize",
      "yes",
      "--bind",
      "127.0.0.1",
      "-::1",
      "--port",
      "6379",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      "/var/lib/redis",
      "--logfile",
      "/var/log/redis/ci.log",
    ]);
  }
  if (!(await postgresAnswers())) {
    const [version, cluster] = ["15", "main"];
    const started = await capture(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"]);
    actions.push(`postgres: started (exit ${started.exitCode})`);
    await waitUntil(postgresAnswers, 30_000);
  }
  if (!externalBrokers()) {
    try {
      const status = await startAgain(ensureBroker);
      if (status.startedNow) actions.push(`kafka: started (pid ${status.pid})`);
    } catch (error) {
      actions.push(`kafka: could not be started: ${(error as Error).message}`);
    }
  } else if (infraUrls.kafkaBrokers === clusterBrokers) {
    try {
      const status = await startAgain(ensureCluster);
      if (status.startedNodeIds.length > 0)
        actions.push(`cluster: node ${status.startedNodeIds.join(", ")} started`);
    } catch (error) {
      actions.push(`cluster: could not be started: ${(error as Error).message}`);
    }
  }
  return actions;
}

// ---------------------------------------------------------------------------------------------
// the stages: current incarnation of each copy, restart with the same environment, supervision

interface Incarnation {
  stage: StageProcess;
  /** Which copy of its stage: always 1, or 1..instancesPerStage with --cluster. */
  instance: number;
  /** Successive processes of one copy: 1, then 2 after its first restart, ... */
  number: number;
  /** Names the copy in logs and the report: "evaluator", or "evaluator#2" with several copies. */
  label: string;
  startedAtMs: number;
}

class StageSet {
  /** The live process of every copy, keyed by label; a copy killed and not yet restarted is absent. */
  readonly current = new Map<string, Incarnation>();
  readonly all: Incarnation[] = [];
  readonly unexpectedExits: StageExit[] = [];
  readonly #envs = new Map<StageName, Record<string, string>>();
  readonly #intentional = new Set<number>();
  /** Copies killed and left down (cluster mode) until `restart`. */
  readonly #down = new Map<string, Incarnation>();
  #stopping = false;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly clock: () => number,
    private readonly log: (line: string) => void,
    private readonly instancesPerStage: number,
  ) {
    for (const stage of pipeline.stages) {
      this.#envs.set(stage.name, environOf(stage.process.pid));
      this.#adopt(stage, 1, 1);
    }
  }

  label(name: StageName, instance: number): string {
    return this.instancesPerStage > 1 ? `${name}#${instance}` : name;
  }

  /** The topic a consuming stage reads (the same for all its copies: one group). */
  inputTopic(name: ConsumingStage): string {
    return this.#envs.get(name)?.INPUT_TOPIC as string;
  }

  /** Starts copies 2..instancesPerStage of `name` with the first one's environment, so its group. */
  async addCopies(name: StageName): Promise<void> {
    for (let instance = 2; instance <= this.instancesPerStage; instance++)
      this.#adopt(await startStage(name, this.#envs.get(name) as Record<string, string>), instance, 1);
  }

  get(name: StageName, instance = 1): Incarnation {
    const incarnation = this.current.get(this.label(name, instance));
    if (!incarnation) throw new Error(`no running ${this.label(name, instance)}`);
    return incarnation;
  }

  labelOf(stage: StageProcess): string {
    return this.all.find((incarnation) => incarnation.stage === stage)?.label ?? stage.name;
  }

  /** The live copies of `name`. */
  copies(name: StageName): Incarnation[] {
    return [...this.current.values()].filter((incarnation) => incarnation.stage.name === name);
  }

  /** kill -9, wait for the exit, start a successor with the same env; resolves once it runs. */
  async kill(name: StageName): Promise<Incarnation> {
    return (
      await this.#replace(name, async (stage) => {
        stage.process.kill("SIGKILL");
        return await stage.process.exited;
      })
    ).successor;
  }

  /**
   * SIGTERM (SIGKILL only if it is still running after `graceMs`), then a successor as for kill.
   * Reports the exit code (null: it had to be killed) and how long the stage took to exit.
   */
  async terminate(
    name: StageName,
    graceMs: number,
  ): Promise<{ successor: Incarnation; code: number | null; afterMs: number }> {
    return await this.#replace(name, (stage) => stopStage(stage, graceMs));
  }

  /** kill -9 of one copy, left down so that the other copies take its partitions; see `restart`. */
  async killAndLeaveDown(name: StageName, instance: number): Promise<Incarnation> {
    const incarnation = this.get(name, instance);
    this.#intentional.add(incarnation.stage.process.pid);
    this.current.delete(incarnation.label);
    this.#down.set(incarnation.label, incarnation);
    incarnation.stage.process.kill("SIGKILL");
    await incarnation.stage.process.exited;
    return incarnation;
  }

  /** Starts a successor of a copy left down by `killAndLeaveDown`. */
  async restart(name: StageName, instance: number): Promise<Incarnation> {
    const down = this.#down.get(this.label(name, instance));
    if (!down) throw new Error(`${this.label(name, instance)} is not down`);
    return await this.#restart(name, instance, down.number + 1);
  }

  async #replace(
    name: StageName,
    stop: (stage: StageProcess) => Promise<number | null>,
  ): Promise<{ successor: Incarnation; code: number | null; afterMs: number }> {
    const { stage, number } = this.get(name);
    this.#intentional.add(stage.process.pid);
    const stoppingAtMs = performance.now();
    const code = await stop(stage);
    const afterMs = Math.round(performance.now() - stoppingAtMs);
    return { successor: await this.#restart(name, 1, number + 1), code, afterMs };
  }

  /** From now on exits are expected: pipeline.stop() terminates the current incarnations. */
  stopSupervising(): void {
    this.#stopping = true;
  }

  async #restart(name: StageName, instance: number, number: number): Promise<Incarnation> {
    const env = this.#envs.get(name) as Record<string, string>;
    for (let attempt = 1; ; attempt++) {
      try {
        const stage = await startStage(name, env);
        return this.#adopt(stage, instance, number);
      } catch (error) {
        if (attempt >= 5 || this.#stopping) throw error;
        this.log(
          `chaos: ${this.label(name, instance)} did not start (${(error as Error).message.split("\n")[0]}), again`,
        );
        await Bun.sleep(1000);
      }
    }
  }

  #adopt(stage: StageProcess, instance: number, number: number): Incarnation {
    const label = this.label(stage.name, instance);
    const previous = this.current.get(label) ?? this.#down.get(label);
    this.#down.delete(label);
    const index = previous ? this.pipeline.stages.indexOf(previous.stage) : -1;
    // pipeline.stop() stops what pipeline.stages holds: keep it pointing at the live processes.
    if (index >= 0) this.pipeline.stages[index] = stage;
    else if (!this.pipeline.stages.includes(stage)) this.pipeline.stages.push(stage);
    const incarnation = { stage, instance, number, label, startedAtMs: this.clock() };
    this.current.set(label, incarnation);
    this.all.push(incarnation);
    void stage.process.exited.then((code) => {
      if (this.#intentional.has(stage.process.pid) || this.#stopping) return;
      if (this.current.get(label) !== incarnation) return;
      const exit = {
        stage: label,
        code,
        atS: Math.round(this.clock() / 100) / 10,
        lastLines: stage.output.slice(-15),
      };
      this.unexpectedExits.push(exit);
      this.log(`chaos: ${label} exited by itself (code ${code}); restarting it as a supervisor would`);
      this.#restart(stage.name, instance, number + 1).catch((error: unknown) =>
        this.log(`chaos: ${label} could not be restarted: ${(error as Error).message}`),
      );
    });
    return incarnation;
  }

  writeLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    for (const { stage, label, number } of this.all)
      writeFileSync(join(dir, `${label}-${number}.log`), `${stage.output.join("\n")}\n`);
  }
}

/**
 * The partitions of `topic` a stage process holds according to its log (the consumer's "partitions
 * assigned" and "partitions revoked" lines), and when that last changed (epoch ms; 0: never).
 */
export function assignmentFromLog(
  lines: readonly string[],
  topic: string,
): { partitions: Set<number>; changedAtMs: number } {
  const partitions = new Set<number>();
  let changedAtMs = 0;
  for (const line of lines) {
    if (!line.includes('"message":"partitions ')) continue;
    const entry = JSON.parse(line) as { time: string; message: string; partitions: string };
    const assigned = entry.message === "partitions assigned";
    if (!assigned && entry.message !== "partitions revoked") continue;
    for (const item of entry.partitions.split(",")) {
      const match = /^(.*)\[(\d+)\]$/.exec(item);
      if (match?.[1] !== topic) continue;
      if (assigned) partitions.add(Number(match[2]));
      else partitions.delete(Number(match[2]));
      changedAtMs = Date.parse(entry.time);
    }
  }
  return { partitions, changedAtMs };
}

// ---------------------------------------------------------------------------------------------
// the monitor: SENT rows and each stage's /metrics, polled

class Monitor {
  sent = 0;
  /** records_consumed_total of every incarnation (the last value scraped for dead ones). */
  readonly consumed = new Map<Incarnation, number>();
  /** The rules version in force in each evaluator incarnation. */
  readonly #rulesVersions = new Map<Incarnation, number>();
  /** Consumer lag and mean batch time of each copy's current incarnation, for the progress line. */
  readonly detail = new Map<string, { lag: number; batchMs: number }>();
  #running = true;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly stages: StageSet,
    private readonly clientIds: string[],
  ) {}

  start(): void {
    this.#loop = (async () => {
      while (this.#running) {
        await Promise.allSettled([
          this.freshSent(),
          ...[...this.stages.current.values()].map((incarnation) => this.#scrape(incarnation)),
        ]);
        await Bun.sleep(pollIntervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  consumedBy(incarnation: Incarnation): number {
    return this.consumed.get(incarnation) ?? 0;
  }

  /** Records consumed by every process `name` ever ran (grows as long as any copy consumes). */
  consumedByStage(name: StageName): number {
    let total = 0;
    for (const [incarnation, count] of this.consumed) if (incarnation.stage.name === name) total += count;
    return total;
  }

  /**
   * Counts SENT rows now (throws while Postgres is away, or after 5 s: postgres.js can leave a query
   * pending for good when a Postgres restart kills its connection, which must not stall the monitor).
   */
  async freshSent(): Promise<number> {
    const query = this.pipeline.sql.unsafe<{ n: number }[]>(
      "SELECT count(*)::int AS n FROM notifications WHERE client_id = ANY($1::uuid[]) AND alert_id NOT LIKE 'canary-%' AND status = 'SENT'",
      [this.clientIds] as never[],
    );
    const [row] = await Promise.race([
      query,
      Bun.sleep(5000).then(() => Promise.reject(new Error("SENT count took over 5 s"))),
    ]);
    this.sent = Math.max(this.sent, row?.n ?? 0);
    return this.sent;
  }

  /** The rules version every live evaluator copy has in force now (the lowest of them). */
  async freshRulesVersion(): Promise<number> {
    const evaluators = this.stages.copies("evaluator");
    await Promise.all(evaluators.map((incarnation) => this.#scrape(incarnation)));
    return Math.min(...evaluators.map((incarnation) => this.#rulesVersions.get(incarnation) ?? -1));
  }

  async #scrape(incarnation: Incarnation): Promise<void> {
    const { stage, label } = incarnation;
    const response = await fetch(`http://127.0.0.1:${stage.httpPort}/metrics`, {
      signal: AbortSignal.timeout(1000),
    });
    const text = await response.text();
    let consumed = 0;
    for (const match of text.matchAll(/^records_consumed_total\{[^}]*\} ([0-9.e+]+)$/gm))
      consumed += Number(match[1]);
    this.consumed.set(incarnation, consumed);
    let lag = 0;
    for (const match of text.matchAll(/^consumer_lag\{[^}]*\} ([0-9.e+-]+)$/gm))
      lag += Math.max(0, Number(match[1]));
    const sum = Number(/^batch_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/m.exec(text)?.[1] ?? 0);
    const count = Number(/^batch_duration_seconds_count\{[^}]*\} ([0-9.e+-]+)$/m.exec(text)?.[1] ?? 0);
    this.detail.set(label, { lag, batchMs: count > 0 ? Math.round((sum / count) * 1000) : 0 });
    if (stage.name === "evaluator") {
      const version = /^rules_version_applied\{[^}]*\} (\d+)/m.exec(text)?.[1];
      if (version !== undefined) this.#rulesVersions.set(incarnation, Number(version));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the alert stream: the project's Producer, batches at a steady rate, failed batches sent again

class AlertStream {
  acknowledged = 0;
  resent = 0;
  failures = 0;
  lastAckAtMs = 0;
  done = false;
  startedAtMs = 0;
  endedAtMs = 0;
  #producer: Producer;
  #firstErrors: string[] = [];

  constructor(
    private readonly options: ChaosOptions,
    private readonly record: (index: number) => ProduceRecord,
    private readonly clock: () => number,
  ) {
    this.#producer = this.#newProducer();
  }

  #newProducer(): Producer {
    return new Producer({
      brokers: infraUrls.kafkaBrokers,
      clientId: "chaos-producer",
      logger: createLogger("chaos.producer", 40),
      deliveryTimeoutMs: 10_000,
    });
  }

  /** Sends at least `alerts` alerts, and goes on while `more()` says so (faults still running). */
  async run(more: () => boolean): Promise<void> {
    const { alerts, ratePerS, signal } = this.options;
    const tickMs = 100;
    const batchMax = Math.max(1, Math.round((ratePerS * tickMs) / 1000));
    this.startedAtMs = this.clock();
    let scheduleStart = this.clock();
    let scheduled = 0; // alerts the schedule allowed when it (re)started
    while ((this.acknowledged < alerts || more()) && !signal?.aborted) {
      const now = this.clock();
      let due = scheduled + Math.floor(((now - scheduleStart) * ratePerS) / 1000);
      // After a stall (the broker away) catch up by one second at most, then hold the rate again.
      if (due - this.acknowledged > ratePerS) {
        scheduled = this.acknowledged + ratePerS;
        scheduleStart = now;
        due = scheduled;
      }
      if (due <= this.acknowledged) {
        await Bun.sleep(tickMs / 2);
        continue;
      }
      const end = Math.min(due, this.acknowledged + batchMax * 4);
      const batch: ProduceRecord[] = [];
      for (let i = this.acknowledged; i < end; i++) batch.push(this.record(i));
      await this.#sendWithRetry(batch);
      this.acknowledged = end;
      this.lastAckAtMs = this.clock();
    }
    this.endedAtMs = this.clock();
    this.done = true;
    await this.#producer.close(2000);
  }

  errors(): string[] {
    return this.#firstErrors;
  }

  async #sendWithRetry(batch: ProduceRecord[]): Promise<void> {
    const startedAt = this.clock();
    for (;;) {
      try {
        await this.#producer.send(batch);
        return;
      } catch (error) {
        this.failures++;
        this.resent += batch.length;
        if (this.#firstErrors.length < 5) this.#firstErrors.push((error as Error).message);
        if (this.clock() - startedAt > brokerRecoveryTimeoutMs + 60_000)
          throw new Error(`alerts could not be sent for ${brokerRecoveryTimeoutMs / 1000 + 60} s: ${error}`);
        // A fatal producer state (not retryable) needs a new producer; a timeout just a resend.
        if (!(error instanceof KafkaError) || !error.retryable) {
          const old = this.#producer;
          this.#producer = this.#newProducer();
          void old.close(100).catch(() => {});
        }
        await Bun.sleep(500);
        if (this.options.signal?.aborted) throw new Error("aborted");
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the run

export interface PlannedFault {
  kind: FaultKind;
  /** For kills and SIGTERMs: the stage. */
  target?: StageName;
  /** For kills with several copies per stage: which one. */
  instance?: number;
  /** Pause after the previous fault recovered, so faults hit at random moments. */
  gapMs: number;
}

/**
 * The fault plan of a seed: the first four kills hit every consuming stage once (in random order),
 * the others a random stage (never the one just killed), each a random copy of it when there are
 * several; the other faults (`infraKinds`) go anywhere but first, so the pipeline is warm when they hit.
 */
export function planFaults(
  kills: number,
  random: () => number,
  infraKinds: readonly FaultKind[],
  instancesPerStage = 1,
): PlannedFault[] {
  const targets: ConsumingStage[] = shuffle([...consumingStages], random).slice(0, Math.max(kills, 0));
  while (targets.length < kills) {
    const previous = targets.at(-1);
    const choices = consumingStages.filter((s) => s !== previous);
    targets.push(choices[Math.floor(random() * choices.length)] as ConsumingStage);
  }
  const plan: Omit<PlannedFault, "gapMs">[] = targets.map((target) =>
    instancesPerStage > 1
      ? { kind: "kill" as const, target, instance: 1 + Math.floor(random() * instancesPerStage) }
      : { kind: "kill" as const, target },
  );
  for (const kind of infraKinds) plan.splice(1 + Math.floor(random() * plan.length), 0, { kind });
  return plan.map((fault) => ({ ...fault, gapMs: 500 + Math.floor(random() * 3000) }));
}

/** The faults besides stage kills: the cluster's broker kill, or restarts of the shared services. */
function infraFaultKinds(options: ChaosOptions): FaultKind[] {
  if (options.cluster) return ["broker-kill"];
  return options.infraFaults ? ["kafka-restart", "postgres-restart", "redis-pause"] : [];
}

/** A rolling restart: every stage once, in a seeded order. */
export function planRollingRestart(random: () => number): PlannedFault[] {
  const stages: StageName[] = [...consumingStages, "rule-service"];
  return shuffle(stages, random).map((target) => ({
    kind: "sigterm" as const,
    target,
    gapMs: 500 + Math.floor(random() * 3000),
  }));
}

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const options: ChaosOptions = { ...defaultChaosOptions, ...partial };
  const { log, signal } = options;
  const random = createRandom(options.seed);
  const plan = options.rolling
    ? planRollingRestart(random)
    : planFaults(options.kills, random, infraFaultKinds(options), options.instancesPerStage);
  if (options.cluster && infraUrls.kafkaBrokers !== clusterBrokers)
    throw new SetupError(
      `--cluster needs KAFKA_BROKERS=${clusterBrokers} (now ${infraUrls.kafkaBrokers}): run ./dev chaos --cluster`,
    );
  const t0 = performance.now();
  const clock = () => performance.now() - t0;
  const seconds = (ms: number) => Math.round(ms / 100) / 10;

  const { leaseMs, schedulerIntervalMs } = options;
  const pipeline = await startPipeline({
    postgresUrl: options.postgresUrl,
    partitions: options.partitions,
    replicationFactor: options.cluster ? clusterReplicationFactor : undefined,
    stageEnv: {
      sender: {
        LEASE_MS: String(leaseMs),
        // At most half the lease (src/core/lease.ts); the sink answers at once.
        HTTP_TIMEOUT_MS: String(Math.floor(leaseMs / 2)),
        SCHEDULER_INTERVAL_MS: String(schedulerIntervalMs),
        // The sink counts a group message's alerts from its alertIds: a window that grew during a
        // fault must carry all of them, not as many as a receiver-sized body holds.
        GROUP_BODY_BYTES_MAX: String(64 * 1024 * 1024),
      },
    },
  });
  const stages = new StageSet(pipeline, clock, log, options.instancesPerStage);
  const logsDir = join(repoRoot, ".run/chaos", pipeline.run);
  const faults: FaultResult[] = [];
  let monitor: Monitor | undefined;
  let reporter: ReturnType<typeof setInterval> | undefined;
  let stopExitCodes: Record<string, number | null> = {};
  let faultsDone = false;
  try {
    await Promise.all(consumingStages.map((name) => stages.addCopies(name)));
    // Clients A and B have a rule on "chaos-cpu", client C on "chaos-disk"; a probe client gets
    // rules on names no alert has, to see rule changes travel to the evaluator.
    const grouping =
      options.groupBy === undefined
        ? {}
        : {
            group_by: [options.groupBy],
            group_wait_ms: chaosGroupWindowMs,
            group_interval_ms: chaosGroupWindowMs,
          };
    const a = await pipeline.createClientWithRule("chaos-cpu", grouping);
    const b = await pipeline.createClientWithRule("chaos-cpu", grouping);
    const c = await pipeline.createClientWithRule("chaos-disk", grouping);
    const probe = await pipeline.createClientWithRule("chaos-probe-0");
    const clientIds = [a.clientId, b.clientId, c.clientId];

    const { matchEvery } = options;
    const diskAt = Math.floor(matchEvery / 2);
    const nameOf = (i: number) =>
      i % matchEvery === 0 ? "chaos-cpu" : i % matchEvery === diskAt ? "chaos-disk" : `noise-${i % 7}`;
    const alertId = (i: number) => `${pipeline.run}-${i}`;
    /** Expected notifications for the first n alerts: 2 per chaos-cpu alert, 1 per chaos-disk one. */
    const expectedCount = (n: number) =>
      2 * Math.ceil(n / matchEvery) + Math.max(0, Math.ceil((n - diskAt) / matchEvery));
    const expectedKeys = (n: number) => {
      const keys = new Set<string>();
      for (let i = 0; i < n; i++) {
        const name = nameOf(i);
        if (name === "chaos-cpu") {
          keys.add(`${a.clientId}|${alertId(i)}`);
          keys.add(`${b.clientId}|${alertId(i)}`);
        } else if (name === "chaos-disk") keys.add(`${c.clientId}|${alertId(i)}`);
      }
      return keys;
    };

    // What the sink saw, folded in incrementally.
    const sinkKeys = new Map<string, Set<string>>();
    const sinkSeen: string[] = [];
    /** Group messages: per Idempotency-Key (and endpoint), the alerts of every POST that carried it. */
    const groupContents = new Map<string, Set<string>>();
    let sinkIndex = 0;
    const ourHooks = new Set(clientIds.map((id) => `/hook/${id}`));
    const foldSink = () => {
      const received = pipeline.sink.received;
      for (; sinkIndex < received.length; sinkIndex++) {
        const request = received[sinkIndex];
        if (!request || !ourHooks.has(request.path)) continue;
        const clientId = request.path.slice("/hook/".length);
        const idempotencyKey = request.headers.get("idempotency-key") ?? "";
        const body = JSON.parse(request.body) as { alertId?: string; version?: string; alertIds?: string[] };
        // A group message (src/core/group-payload.ts) carries all its alerts in alertIds.
        const alertIds = body.version === "4" ? (body.alertIds ?? []) : [body.alertId ?? ""];
        if (body.version === "4") {
          const content = JSON.stringify([...alertIds].sort());
          const messageKey = `${request.path}|${idempotencyKey}`;
          const contents = groupContents.get(messageKey) ?? new Set<string>();
          contents.add(content);
          groupContents.set(messageKey, contents);
        }
        for (const alertId of alertIds) {
          if (alertId.startsWith("canary-")) continue;
          const key = `${clientId}|${alertId}`;
          sinkSeen.push(key);
          const keys = sinkKeys.get(key) ?? new Set<string>();
          keys.add(idempotencyKey);
          sinkKeys.set(key, keys);
        }
      }
    };

    monitor = new Monitor(pipeline, stages, clientIds);
    monitor.start();
    const activeMonitor = monitor;
    const stream = new AlertStream(
      options,
      (i) => ({
        topic: pipeline.topics.alertsNew,
        key: alertId(i),
        value: pipeline.alert(alertId(i), nameOf(i)),
      }),
      clock,
    );
    const allSent = () => stream.done && activeMonitor.sent >= expectedCount(stream.acknowledged);

    let probeRules = 0;
    /**
     * A new rule for the probe client through the API, then a rule.changed record for it on this
     * pipeline's topic. The record is produced here too because the rule service's outbox is shared
     * by every pipeline using the database: whichever rule service holds the relay lock publishes the
     * change, to its own topic, so a concurrently running test may carry ours away.
     */
    const changeRules = async () => {
      probeRules++;
      let ruleId: string | undefined;
      for (let attempt = 0; attempt < 100 && ruleId === undefined; attempt++) {
        try {
          const rule = await pipeline.api("POST", "/api/v1/rules", {
            client_id: probe.clientId,
            severity: "HIGH",
            source: pipeline.source,
            name: `chaos-probe-${probeRules}`,
          });
          if (rule.status === 201) ruleId = rule.body.id as string;
        } catch {
          // the rule service may be waiting for Postgres
        }
        if (ruleId === undefined) await Bun.sleep(200);
      }
      if (ruleId === undefined) throw new Error("could not change a rule through the API");
      const value = toBinary(
        RuleChangedSchema,
        create(RuleChangedSchema, {
          ruleId,
          clientId: probe.clientId,
          action: RuleAction.CREATED,
          version: 1n,
          changedAtUnixMs: BigInt(Date.now()),
          schemaVersion: 1,
        }),
      );
      for (let attempt = 1; ; attempt++) {
        try {
          await pipeline.producer.send([{ topic: pipeline.topics.ruleChanged, key: ruleId, value }]);
          return;
        } catch (error) {
          if (attempt >= 10) throw error;
          await Bun.sleep(500);
        }
      }
    };
    const rulesVersionNow = async () => {
      let version = -1;
      await waitUntil(async () => {
        version = await activeMonitor.freshRulesVersion();
        return true;
      }, trackTimeoutMs);
      return version;
    };
    const rulesAdvance = (from: number) =>
      waitUntil(async () => (await activeMonitor.freshRulesVersion()) > from, trackTimeoutMs, signal);
    /** Waits until the SENT count grows past its value now (or everything is SENT already). */
    const sentGrows = async (): Promise<boolean> => {
      let base: number | undefined;
      await waitUntil(async () => {
        base = await activeMonitor.freshSent();
        return true;
      }, trackTimeoutMs);
      if (base === undefined) return false;
      const from = base;
      return await waitUntil(() => activeMonitor.sent > from || allSent(), trackTimeoutMs, signal);
    };
    /**
     * Waits until alerts flow again after `sinceMs`: the evaluator consumes more and a send is
     * acknowledged (or the stream is done). Both are awaited, whatever the first one gives.
     */
    const alertsFlowAgain = async (sinceMs: number): Promise<boolean> => {
      const from = activeMonitor.consumedByStage("evaluator");
      const flowing = await waitUntil(
        () => activeMonitor.consumedByStage("evaluator") > from || stream.done,
        trackTimeoutMs,
        signal,
      );
      const acknowledged = await waitUntil(() => stream.lastAckAtMs > sinceMs || stream.done, trackTimeoutMs);
      return flowing && acknowledged;
    };
    const result = (
      kind: FaultKind,
      target: string,
      atMs: number,
      atAlert: number,
      backAtMs: number,
      resumed: boolean,
      what: string,
    ): FaultResult => {
      const fault: FaultResult = {
        kind,
        target,
        atS: seconds(atMs),
        atAlert,
        downMs: Math.round(backAtMs - atMs),
        recoveryMs: resumed ? Math.round(clock() - atMs) : undefined,
        signal: what,
      };
      log(
        `chaos: ${kind} ${target} at ${fault.atS} s: back after ${fault.downMs} ms, ` +
          (fault.recoveryMs === undefined ? "progress NOT resumed" : `progress after ${fault.recoveryMs} ms`),
      );
      return fault;
    };

    /** kill -9 or SIGTERM, then a successor; recovered once the successor does its part again. */
    const replaceStage = async (kind: "kill" | "sigterm", target: StageName): Promise<FaultResult> => {
      const atMs = clock();
      const atAlert = stream.acknowledged;
      let successor: Incarnation;
      let exit: FaultResult["exit"];
      if (kind === "kill") successor = await stages.kill(target);
      else {
        const terminated = await stages.terminate(target, options.gracefulExitMs);
        successor = terminated.successor;
        exit = { code: terminated.code, afterMs: terminated.afterMs };
      }
      const backAtMs = clock();
      const consumedAgain = () =>
        waitUntil(() => activeMonitor.consumedBy(successor) > 0 || allSent(), trackTimeoutMs, signal);
      let resumed: boolean;
      let what: string;
      if (target === "rule-updater" || target === "rule-service") {
        const from = await rulesVersionNow();
        await changeRules();
        resumed =
          (await rulesAdvance(from)) &&
          (target === "rule-service" || (await consumedAgain())) &&
          (await sentGrows());
        what = `a rule change made through the API after the restart of ${target} reached the evaluator, SENT grew`;
      } else if (target === "sender" && options.groupBy !== undefined) {
        // Grouped rows are never announced on notifications.ready: the sender's scheduler sends them.
        resumed = await sentGrows();
        what = "restarted sender's group windows went out: SENT grew";
      } else {
        resumed = (await consumedAgain()) && (await sentGrows());
        what = `restarted ${target} consumed records, then SENT grew`;
      }
      return { ...result(kind, target, atMs, atAlert, backAtMs, resumed, what), exit };
    };

    const restartBroker = async (): Promise<FaultResult> => {
      const atMs = clock();
      const atAlert = stream.acknowledged;
      const pid = runningBrokerPid();
      if (externalBrokers() || pid === undefined) {
        const skipped = externalBrokers()
          ? "KAFKA_BROKERS is set: that broker is not ours to restart"
          : "no broker started by ./dev is running";
        log(`chaos: kafka-restart skipped: ${skipped}`);
        return {
          kind: "kafka-restart",
          target: "broker",
          atS: seconds(atMs),
          atAlert,
          downMs: 0,
          recoveryMs: undefined,
          signal: "",
          skipped,
        };
      }
      process.kill(pid, options.brokerStop === "kill" ? "SIGKILL" : "SIGTERM");
      await waitUntil(() => !isAlive(pid), 60_000);
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
      await startAgain(ensureBroker);
      const backAtMs = clock();
      const resumed = (await alertsFlowAgain(backAtMs)) && (await sentGrows());
      return result(
        "kafka-restart",
        `broker pid ${pid} (${options.brokerStop === "kill" ? "kill -9" : "SIGTERM"})`,
        atMs,
        atAlert,
        backAtMs,
        resumed,
        "broker answers; alerts acknowledged and consumed by the evaluator again; then SENT grew",
      );
    };

    /** The partitions of `topic` the given copies hold together, and when that last changed. */
    const heldBy = (copies: readonly Incarnation[], topic: string) => {
      const partitions = new Set<number>();
      let changedAtMs = 0;
      for (const copy of copies) {
        const held = assignmentFromLog(copy.stage.output, topic);
        for (const partition of held.partitions) partitions.add(partition);
        changedAtMs = Math.max(changedAtMs, held.changedAtMs);
      }
      return { partitions, changedAtMs };
    };

    /**
     * --cluster: kill -9 of one copy of a stage, left down until the other copies hold all its
     * partitions and progress resumed, then restarted until it holds partitions again.
     */
    const killCopy = async (target: ConsumingStage, instance: number): Promise<FaultResult> => {
      const topic = stages.inputTopic(target);
      // A settled group first, so the kill takes partitions away from a working copy.
      await waitUntil(
        () =>
          stages.copies(target).length === options.instancesPerStage &&
          stages.copies(target).every((copy) => heldBy([copy], topic).partitions.size > 0),
        trackTimeoutMs,
        signal,
      );
      const victim = stages.get(target, instance);
      const partitionsMoved = heldBy([victim], topic).partitions.size;
      const atMs = clock();
      const atAlert = stream.acknowledged;
      const killedAtEpochMs = Date.now();
      await stages.killAndLeaveDown(target, instance);
      const survivors = stages.copies(target);
      let takeoverMs: number | undefined;
      await waitUntil(
        () => {
          const held = heldBy(survivors, topic);
          if (held.partitions.size < options.partitions) return false;
          takeoverMs = held.changedAtMs - killedAtEpochMs;
          return true;
        },
        trackTimeoutMs,
        signal,
      );
      const backAtMs = clock();
      const survivorsConsumed = () =>
        survivors.reduce((sum, copy) => sum + activeMonitor.consumedBy(copy), 0);
      const from = survivorsConsumed();
      // The rule-updater consumes only when a rule changes: make one, which must reach the evaluators.
      const rulesFrom = target === "rule-updater" ? await rulesVersionNow() : undefined;
      if (rulesFrom !== undefined) await changeRules();
      const resumed =
        takeoverMs !== undefined &&
        (await waitUntil(() => survivorsConsumed() > from || allSent(), trackTimeoutMs, signal)) &&
        (rulesFrom === undefined || (await rulesAdvance(rulesFrom))) &&
        (await sentGrows());
      const what =
        rulesFrom === undefined
          ? `the other copy of ${target} held all ${options.partitions} partitions and consumed; SENT grew`
          : `the other rule-updater held all ${options.partitions} partitions and consumed a rule change, which reached the evaluators; SENT grew`;
      const fault = result("kill", `${target}#${instance}`, atMs, atAlert, backAtMs, resumed, what);
      const restartedAtMs = clock();
      const successor = await stages.restart(target, instance);
      const rejoined = await waitUntil(
        () => heldBy([successor], topic).partitions.size > 0,
        trackTimeoutMs,
        signal,
      );
      const rejoinMs = rejoined ? Math.round(clock() - restartedAtMs) : undefined;
      log(
        `chaos: ${target}#${instance} held ${partitionsMoved} partitions; taken over after ` +
          `${takeoverMs === undefined ? "NEVER" : `${takeoverMs} ms`}; restarted, holds partitions again after ${rejoinMs ?? "NEVER"} ms`,
      );
      return { ...fault, target, instance, takeoverMs, partitionsMoved, rejoinMs };
    };

    /** Brokers being restarted while the next faults go on; awaited before the settle. */
    const brokerRestarts: Promise<void>[] = [];
    /**
     * --cluster: kill -9 of the broker leading the most partitions of the run's topics, left down
     * until every partition is led by another broker and alerts flow through the evaluators again,
     * then restarted in the background (its log recovery takes a while; the next faults need not wait).
     */
    const killBroker = async (): Promise<FaultResult> => {
      const runTopics = new Set(Object.values(pipeline.topics));
      const admin = new Admin(infraUrls.kafkaBrokers, {}, createLogger("chaos.admin", 40));
      try {
        const leaders = () =>
          admin
            .listTopics(2000)
            .filter((topic) => runTopics.has(topic.name))
            .flatMap((topic) => topic.leaders);
        const ledBy = new Map<number, number>();
        for (const leader of leaders()) ledBy.set(leader, (ledBy.get(leader) ?? 0) + 1);
        const [nodeId, partitionsMoved] = [...ledBy]
          .filter(([leader]) => leader >= 0)
          .sort((a, b) => b[1] - a[1])[0] as [number, number];
        const pid = clusterNodePid(nodeId);
        if (pid === undefined) throw new Error(`cluster node ${nodeId} runs no process started by ./dev`);
        const atMs = clock();
        const atAlert = stream.acknowledged;
        process.kill(pid, "SIGKILL");
        await waitUntil(() => !isAlive(pid), 60_000);
        let takeoverMs: number | undefined;
        await waitUntil(
          () => {
            const now = leaders();
            if (now.length === 0 || now.some((leader) => leader < 0 || leader === nodeId)) return false;
            takeoverMs = Math.round(clock() - atMs);
            return true;
          },
          trackTimeoutMs,
          signal,
        );
        const movedAtMs = clock();
        const flowing = await alertsFlowAgain(movedAtMs);
        const resumed = takeoverMs !== undefined && flowing && (await sentGrows());
        const fault: FaultResult = {
          ...result(
            "broker-kill",
            `node ${nodeId} (pid ${pid}, kill -9)`,
            atMs,
            atAlert,
            movedAtMs,
            resumed,
            "every partition led by another broker; alerts acknowledged and consumed by the evaluators; SENT grew",
          ),
          takeoverMs,
          partitionsMoved,
        };
        log(
          `chaos: node ${nodeId} led ${partitionsMoved} partitions; all led elsewhere after ${takeoverMs ?? "NEVER"} ms; restarting it`,
        );
        const restartedAtMs = clock();
        brokerRestarts.push(
          startAgain(ensureCluster).then(() => {
            fault.rejoinMs = Math.round(clock() - restartedAtMs);
            log(`chaos: node ${nodeId} answers again, ${fault.rejoinMs} ms after its restart began`);
          }),
        );
        return fault;
      } finally {
        admin.close();
      }
    };

    const restartPostgres = async (): Promise<FaultResult> => {
      const [version, cluster] = await postgresCluster();
      const atMs = clock();
      const atAlert = stream.acknowledged;
      let restart = await capture(["pg_ctlcluster", version, cluster, "restart"]);
      if (restart.exitCode !== 0)
        restart = await capture(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"]);
      if (restart.exitCode !== 0) throw new Error(`pg_ctlcluster restart failed: ${restart.output}`);
      await waitUntil(postgresAnswers, 60_000);
      const backAtMs = clock();
      const resumed = await sentGrows();
      return result(
        "postgres-restart",
        `cluster ${version}/${cluster}`,
        atMs,
        atAlert,
        backAtMs,
        resumed,
        "Postgres answers; SENT grew",
      );
    };

    const pauseRedis = async (): Promise<FaultResult> => {
      const from = await rulesVersionNow();
      const atMs = clock();
      const atAlert = stream.acknowledged;
      const paused = await capture(redisCli("client", "pause", String(options.redisPauseMs), "ALL"));
      if (paused.exitCode !== 0 || !paused.output.includes("OK"))
        throw new Error(`redis CLIENT PAUSE failed: ${paused.output}`);
      // A rule changed while Redis is away must reach the evaluator once it is back.
      const changed = changeRules();
      await waitUntil(redisAnswers, 60_000);
      const backAtMs = clock();
      await changed;
      const resumed = (await rulesAdvance(from)) && (await sentGrows());
      return result(
        "redis-pause",
        `CLIENT PAUSE ${options.redisPauseMs} ms ALL`,
        atMs,
        atAlert,
        backAtMs,
        resumed,
        "Redis answers; a rule changed during the pause reached the evaluator; SENT grew",
      );
    };

    // Canaries (not counted): one alert per rule name, again every 3 s, until all three clients have
    // a row for one, so the rules are certainly in force before the stream starts.
    const canariesMatched = await waitUntil(async () => {
      const round = `canary-${pipeline.run}-${Date.now()}`;
      await pipeline.producer.send(
        ["chaos-cpu", "chaos-disk"].map((name) => ({
          topic: pipeline.topics.alertsNew,
          key: `${round}-${name}`,
          value: pipeline.alert(`${round}-${name}`, name),
        })),
      );
      return await waitUntil(async () => {
        const [row] = await pipeline.sql.unsafe<{ n: number }[]>(
          "SELECT count(*)::int AS n FROM notifications WHERE client_id = ANY($1::uuid[]) AND alert_id LIKE $2",
          [clientIds, `${round}-%`] as never[],
        );
        return row?.n === 3;
      }, 3000);
    }, 60_000);
    if (!canariesMatched) throw new Error("the chaos rules did not match canary alerts within 60 s");

    log(
      `chaos: run ${pipeline.run}, seed ${options.seed}: at least ${options.alerts} alerts at ${options.ratePerS}/s ` +
        `(3 notifications per ${matchEvery}), faults: ${plan.map((f) => f.target ?? f.kind).join(", ")}`,
    );
    // The stream goes on until the last fault has recovered, so every fault hits a flowing pipeline.
    const streaming = stream.run(() => !faultsDone);
    let streamFailure: unknown;
    streaming.catch((error: unknown) => {
      streamFailure = error;
    });
    reporter = setInterval(() => {
      const stagesNow = [...stages.current.values()]
        .filter(({ stage }) => (consumingStages as readonly string[]).includes(stage.name))
        .map(({ label }) => {
          const detail = activeMonitor.detail.get(label);
          return detail ? `${label} lag ${detail.lag} batch ${detail.batchMs} ms` : label;
        })
        .join(", ");
      log(
        `chaos: ${seconds(clock())} s  alerts ${stream.acknowledged}  ` +
          `SENT ${activeMonitor.sent}/${expectedCount(stream.acknowledged)}  faults ${faults.length}/${plan.length}  ` +
          `load ${loadavg()[0]?.toFixed(1)}  (${stagesNow})`,
      );
    }, 5000);

    // Warm up: a few seconds of flow before the first fault.
    await waitUntil(() => stream.acknowledged >= options.ratePerS * 5 || stream.done, 120_000, signal);
    let lastFaultAtMs = clock();
    try {
      for (const [index, planned] of plan.entries()) {
        if (signal?.aborted) break;
        if (streamFailure) throw streamFailure;
        // Spread over the stream: fault i waits for its share of the alerts, so the last one hits
        // near the end (the stream outlasts slow faults on its own).
        const share = 0.05 + (0.85 * index) / Math.max(1, plan.length - 1);
        await waitUntil(() => stream.acknowledged >= share * options.alerts, 3_600_000, signal);
        await Bun.sleep(planned.gapMs);
        lastFaultAtMs = clock();
        if (planned.kind === "kill" && planned.instance !== undefined)
          faults.push(await killCopy(planned.target as ConsumingStage, planned.instance));
        else if (planned.kind === "kill" || planned.kind === "sigterm")
          faults.push(await replaceStage(planned.kind, planned.target as StageName));
        else if (planned.kind === "broker-kill") faults.push(await killBroker());
        else if (planned.kind === "kafka-restart") faults.push(await restartBroker());
        else if (planned.kind === "postgres-restart") faults.push(await restartPostgres());
        else faults.push(await pauseRedis());
      }
      // A broker restarted in the background disturbs the cluster until it is back: the settle
      // window starts then, if that is later than the last fault.
      if (brokerRestarts.length > 0) {
        await Promise.all(brokerRestarts);
        lastFaultAtMs = Math.max(lastFaultAtMs, clock());
      }
    } finally {
      faultsDone = true;
      await Promise.allSettled(brokerRestarts);
    }
    await streaming;
    if (streamFailure) throw streamFailure;
    const expected = expectedKeys(stream.acknowledged);
    log(
      `chaos: stream ended at ${seconds(clock())} s: ${stream.acknowledged} alerts, ${expected.size} expected notifications`,
    );

    // Settle: everything SENT and at the sink, at most settleMs after the last fault.
    const settled = await waitUntil(
      async () => {
        const [row] = await pipeline.sql.unsafe<{ rows: number; sent: number }[]>(
          `SELECT count(*)::int AS rows, (count(*) FILTER (WHERE status = 'SENT'))::int AS sent
           FROM notifications WHERE client_id = ANY($1::uuid[]) AND alert_id NOT LIKE 'canary-%'`,
          [clientIds] as never[],
        );
        if (row?.rows !== expected.size || row.sent !== expected.size) return false;
        foldSink();
        return [...expected].every((key) => sinkKeys.has(key));
      },
      Math.max(0, lastFaultAtMs + options.settleMs - clock()),
      signal,
    );
    const settledAtMs = settled ? clock() : undefined;
    // A repeat from an expired lease shows up within one lease: give it the time to appear.
    await Bun.sleep(options.leaseMs + 1000);
    foldSink();
    clearInterval(reporter);
    reporter = undefined;

    const rows = await pipeline.sql.unsafe<{ client_id: string; alert_id: string; status: string }[]>(
      "SELECT client_id, alert_id, status FROM notifications WHERE client_id = ANY($1::uuid[]) AND alert_id NOT LIKE 'canary-%'",
      [clientIds] as never[],
    );
    const rowCount = countDeliveries(
      expected,
      rows.map((r) => `${r.client_id}|${r.alert_id}`),
    );
    const statusCounts: Record<string, number> = {};
    for (const row of rows) statusCounts[row.status] = (statusCounts[row.status] ?? 0) + 1;
    const [success] = await pipeline.sql.unsafe<{ extra: number }[]>(
      `SELECT (count(*) - count(DISTINCT d.notification_id))::int AS extra
       FROM deliveries d JOIN notifications n ON n.id = d.notification_id
       WHERE n.client_id = ANY($1::uuid[]) AND n.alert_id NOT LIKE 'canary-%' AND d.outcome = 'SUCCESS'`,
      [clientIds] as never[],
    );
    const atSink = countDeliveries(expected, sinkSeen);
    const repeatsAtSink = sinkSeen.filter((key) => expected.has(key)).length - atSink.delivered;
    const repeatsWithOtherKey = [...sinkKeys.values()].filter((keys) => keys.size > 1).length;
    const groupKeysWithOtherContent = [...groupContents.values()].filter((c) => c.size > 1).length;
    const notSent = rows.filter((r) => r.status !== "SENT").length;

    await monitor.stop();
    monitor = undefined;
    stages.stopSupervising();
    const codes = await pipeline.stop();
    stopExitCodes = Object.fromEntries(pipeline.stages.map((s, i) => [stages.labelOf(s), codes[i] ?? null]));

    const violations: string[] = [];
    if (rowCount.lost.length > 0)
      violations.push(`${rowCount.lost.length} expected notifications have no row`);
    if (rowCount.duplicated.length > 0)
      violations.push(`${rowCount.duplicated.length} (client, alert) pairs have more than one row`);
    if (rowCount.unexpected.length > 0) violations.push(`${rowCount.unexpected.length} rows nobody expected`);
    if (notSent > 0) violations.push(`${notSent} rows are not SENT: ${JSON.stringify(statusCounts)}`);
    if (atSink.lost.length > 0)
      violations.push(`${atSink.lost.length} expected notifications never reached the sink`);
    if (atSink.unexpected.length > 0)
      violations.push(`${atSink.unexpected.length} unexpected deliveries at the sink`);
    if (repeatsWithOtherKey > 0)
      violations.push(`${repeatsWithOtherKey} repeats at the sink with another Idempotency-Key`);
    if (groupKeysWithOtherContent > 0)
      violations.push(`${groupKeysWithOtherContent} group Idempotency-Keys carried different alerts`);
    if (!settled)
      violations.push(
        `not everything was SENT and at the sink within ${options.settleMs / 1000} s of the last fault`,
      );
    for (const f of faults) {
      if (f.exit && (f.exit.code !== 0 || f.exit.afterMs > options.gracefulExitMs))
        violations.push(
          `${f.target} on SIGTERM: exit code ${f.exit.code} after ${f.exit.afterMs} ms (expected 0 within ${options.gracefulExitMs} ms)`,
        );
    }
    for (const f of faults.filter((f) => f.kind === "kill" && f.instance !== undefined)) {
      if (f.takeoverMs === undefined || f.takeoverMs > takeoverBoundMs)
        violations.push(
          `${f.target}#${f.instance}: the other copy held its partitions after ${f.takeoverMs ?? "never"} ms (bound ${takeoverBoundMs} ms)`,
        );
      if (f.rejoinMs === undefined)
        violations.push(`${f.target}#${f.instance}: restarted, held no partition again`);
    }
    for (const f of faults.filter((f) => f.kind === "broker-kill")) {
      if (f.takeoverMs === undefined) violations.push(`${f.target}: partitions still led by it or by no one`);
      if (f.rejoinMs === undefined) violations.push(`${f.target}: did not answer again after its restart`);
    }
    const notRecovered = faults.filter((f) => !f.skipped && f.recoveryMs === undefined);
    if (notRecovered.length > 0)
      violations.push(`no progress after: ${notRecovered.map((f) => `${f.kind} ${f.target}`).join(", ")}`);

    return {
      run: pipeline.run,
      seed: options.seed,
      cluster: options.cluster
        ? {
            brokers: clusterBrokers,
            replicationFactor: clusterReplicationFactor,
            instancesPerStage: options.instancesPerStage,
            partitions: options.partitions,
            sessionTimeoutMs: consumerSessionTimeoutMs,
          }
        : undefined,
      alertsSent: stream.acknowledged,
      alertsResent: stream.resent,
      sendFailures: stream.failures,
      durationS: seconds(clock()),
      streamS: seconds(stream.endedAtMs - stream.startedAtMs),
      expected: expected.size,
      rows: rows.length,
      duplicateRows: rowCount.duplicated.length,
      lostRows: rowCount.lost.length,
      unexpectedRows: rowCount.unexpected.length,
      statusCounts,
      notSent,
      sinkDeliveries: sinkSeen.length,
      sinkDistinct: atSink.delivered,
      lostAtSink: atSink.lost.length,
      repeatsAtSink,
      repeatsWithOtherKey,
      groupMessages: groupContents.size,
      groupKeysWithOtherContent,
      unexpectedAtSink: atSink.unexpected.length,
      extraSuccessRows: success?.extra ?? 0,
      faults,
      settledAfterLastFaultS: settledAtMs === undefined ? undefined : seconds(settledAtMs - lastFaultAtMs),
      unexpectedExits: stages.unexpectedExits,
      stopExitCodes,
      logsDir,
      violations,
    };
  } finally {
    faultsDone = true;
    if (reporter) clearInterval(reporter);
    await monitor?.stop();
    stages.stopSupervising();
    try {
      stages.writeLogs(logsDir);
    } catch {
      // the logs are a convenience
    }
    // Still running after a failure: stop the stages first, then bring the services back.
    if (Object.keys(stopExitCodes).length === 0) await pipeline.stop().catch(() => {});
    const restored = await restoreServices();
    if (restored.length > 0) log(`chaos: restored ${restored.join(", ")}`);
  }
}

// ---------------------------------------------------------------------------------------------
// the report

export function formatReport(report: ChaosReport): string {
  const lines: string[] = [];
  const pad = (label: string, value: string | number) => `  ${label.padEnd(34)} ${value}`;
  lines.push(`chaos report: run ${report.run}, seed ${report.seed}, ${report.durationS} s`);
  if (report.cluster) {
    const { brokers, replicationFactor, instancesPerStage, partitions, sessionTimeoutMs } = report.cluster;
    lines.push(
      pad(
        "cluster",
        `${brokers}; ${replicationFactor} replicas, ${partitions} partitions per topic, ` +
          `${instancesPerStage} copies per consuming stage, session timeout ${sessionTimeoutMs / 1000} s`,
      ),
    );
  }
  lines.push(pad("alerts sent (acknowledged)", report.alertsSent));
  lines.push(
    pad("alerts re-sent after a failed batch", `${report.alertsResent} (${report.sendFailures} failures)`),
  );
  lines.push(pad("stream duration", `${report.streamS} s`));
  lines.push(pad("expected notifications", report.expected));
  lines.push(pad("rows", `${report.rows} ${JSON.stringify(report.statusCounts)}`));
  lines.push(pad("duplicate rows", report.duplicateRows));
  lines.push(pad("lost (no row)", report.lostRows));
  lines.push(pad("unexpected rows", report.unexpectedRows));
  lines.push(pad("rows not SENT", report.notSent));
  lines.push(pad("sink deliveries / distinct", `${report.sinkDeliveries} / ${report.sinkDistinct}`));
  lines.push(pad("lost at the sink", report.lostAtSink));
  lines.push(pad("repeats at the sink", report.repeatsAtSink));
  if (report.groupMessages > 0)
    lines.push(
      pad(
        "group messages / other content",
        `${report.groupMessages} / ${report.groupKeysWithOtherContent} (one key, one set of alerts)`,
      ),
    );
  lines.push(pad("repeats with another key", report.repeatsWithOtherKey));
  lines.push(pad("unexpected at the sink", report.unexpectedAtSink));
  lines.push(pad("extra SUCCESS delivery rows", report.extraSuccessRows));
  lines.push(
    pad(
      "settled after the last fault",
      report.settledAfterLastFaultS === undefined ? "NOT settled" : `${report.settledAfterLastFaultS} s`,
    ),
  );
  lines.push("  faults (time since the stream started; back = component up; recovery = progress resumed):");
  for (const f of report.faults) {
    const what = `${f.kind} ${f.target}${f.instance === undefined ? "" : `#${f.instance}`}`;
    if (f.skipped) {
      lines.push(`    ${String(f.atS).padStart(6)} s  ${what.padEnd(44)} skipped: ${f.skipped}`);
      continue;
    }
    const recovery =
      f.recoveryMs === undefined ? "NOT recovered" : `recovery ${(f.recoveryMs / 1000).toFixed(1)} s`;
    const exit = f.exit ? `  exit ${f.exit.code} after ${(f.exit.afterMs / 1000).toFixed(1)} s` : "";
    const orNever = (ms: number | undefined) => (ms === undefined ? "NEVER" : `${(ms / 1000).toFixed(1)} s`);
    const takeover =
      f.partitionsMoved === undefined
        ? ""
        : `  ${f.partitionsMoved} partitions taken over after ${orNever(f.takeoverMs)}, restarted ` +
          `${f.kind === "kill" ? "copy holds partitions" : "node answers"} again after ${orNever(f.rejoinMs)}`;
    lines.push(
      `    ${String(f.atS).padStart(6)} s  ${what.padEnd(44)} back ${(f.downMs / 1000).toFixed(1).padStart(5)} s  ${recovery}${exit}${takeover}`,
    );
  }
  if (report.unexpectedExits.length > 0) {
    lines.push("  stages that exited by themselves (restarted):");
    for (const exit of report.unexpectedExits)
      lines.push(
        `    ${exit.atS} s ${exit.stage} code ${exit.code}: ${exit.lastLines.slice(-3).join(" | ")}`,
      );
  }
  lines.push(pad("exit codes on SIGTERM at the end", JSON.stringify(report.stopExitCodes)));
  lines.push(pad("stage logs", report.logsDir));
  lines.push(report.violations.length === 0 ? "  PASS" : `  FAIL: ${report.violations.join("; ")}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// the command line (also ./dev chaos)

export const usage = `usage: ./dev chaos [--cluster] [--alerts N] [--kills N] [--seed N] [--rate N] [--match-every N] [--group-by LABEL]
  --alerts N       alerts in the stream (default ${defaultChaosOptions.alerts})
  --kills N        kill -9 faults over the consuming stages (default ${defaultChaosOptions.kills}, at least 4)
  --seed N         seed of the fault plan (default ${defaultChaosOptions.seed})
  --rate N         alerts per second (default ${defaultChaosOptions.ratePerS})
  --match-every N  3 notifications per N alerts (default ${defaultChaosOptions.matchEvery})
  --broker-stop kill|term   how the broker goes down (default kill)
  --no-infra       stage kills only: no broker or Postgres restart, no Redis pause
  --report-json F  also write the report to file F as JSON
  --rolling        a rolling restart instead: SIGTERM each stage once, each must exit 0 within 5 s
  --group-by LABEL the rules group by LABEL (group_wait and group_interval ${chaosGroupWindowMs / 1000} s): every
                   Idempotency-Key must carry one set of alerts, every alert be in one delivered group
  --cluster        on ./dev cluster (started if needed): 3 replicas, ${clusterChaosOptions.instancesPerStage} copies of each consuming stage,
                   kill -9 of one copy of each (the other must take over within ${takeoverBoundMs / 1000} s) and of one
                   broker; defaults --alerts ${clusterChaosOptions.alerts} --rate ${clusterChaosOptions.ratePerS} --kills ${clusterChaosOptions.kills}
Also restarts the Kafka broker, Postgres and pauses Redis once (not with --rolling or --cluster). Exit 0 only without loss or
duplicate rows (or any other broken invariant).`;

export function parseChaosFlags(args: readonly string[]): Partial<ChaosOptions> {
  const options: Partial<ChaosOptions> = {};
  const integer = (flag: string, value: string | undefined, min: number) => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min)
      throw new SetupError(`${flag}: expected an integer >= ${min}, got ${value ?? "nothing"}\n${usage}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = (args[i] as string).split("=", 2) as [string, string | undefined];
    const value = () => inline ?? args[++i];
    if (flag === "--alerts") options.alerts = integer(flag, value(), 1);
    else if (flag === "--kills") options.kills = integer(flag, value(), 4);
    else if (flag === "--seed") options.seed = integer(flag, value(), 0);
    else if (flag === "--rate") options.ratePerS = integer(flag, value(), 1);
    else if (flag === "--match-every") options.matchEvery = integer(flag, value(), 2);
    else if (flag === "--broker-stop") {
      const how = value();
      if (how !== "kill" && how !== "term") throw new SetupError(`--broker-stop: kill or term\n${usage}`);
      options.brokerStop = how;
    } else if (flag === "--no-infra") options.infraFaults = false;
    else if (flag === "--rolling") options.rolling = true;
    else if (flag === "--cluster") options.cluster = true;
    else if (flag === "--group-by") {
      const label = value();
      if (!label) throw new SetupError(`--group-by: give a label\n${usage}`);
      options.groupBy = label;
    } else throw new SetupError(`unknown flag ${flag}\n${usage}`);
  }
  if (options.cluster && options.rolling) throw new SetupError(`--cluster or --rolling, not both\n${usage}`);
  return options.cluster ? { ...clusterChaosOptions, ...options } : options;
}

/** `./dev chaos`: infra and migrations, then the run; exit 0 only if every invariant held. */
export async function chaosCommand(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    return 0;
  }
  // --report-json FILE: the report as JSON too, for a test running this in its own process.
  const reportFlag = args.indexOf("--report-json");
  const reportPath = reportFlag >= 0 ? args[reportFlag + 1] : undefined;
  if (reportFlag >= 0 && !reportPath) throw new SetupError(`--report-json: give a file\n${usage}`);
  const options = parseChaosFlags(reportFlag >= 0 ? args.toSpliced(reportFlag, 2) : args);
  await ensureInfra();
  const sql = connectPostgres({ connectionsMax: 1, idleTimeoutSeconds: 1 });
  try {
    await migrate(sql, join(repoRoot, "migrations"));
  } finally {
    await sql.end({ timeout: 1 });
  }
  const abort = new AbortController();
  process.once("SIGINT", () => {
    console.log("chaos: interrupted; stopping the stages and restoring the services");
    abort.abort();
  });
  const report = await runChaos({ ...options, signal: abort.signal });
  console.log(formatReport(report));
  if (reportPath) writeFileSync(reportPath, JSON.stringify(report, null, 2));
  return report.lostRows === 0 && report.duplicateRows === 0 && report.violations.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    process.exit(await chaosCommand(process.argv.slice(2)));
  } catch (error) {
    if (!(error instanceof SetupError)) throw error;
    console.error(`chaos: ${error.message}`);
    process.exit(1);
  }
}
