/**
 * Chaos: faults injected while a large alert stream flows through the whole pipeline, then the
 * delivery invariants checked with counted numbers.
 *
 * The pipeline is the test harness's (test/support/pipeline.ts): its own topics, groups and Redis
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
 * Afterwards (at most `settleMs` after the last fault): every expected notification has exactly one
 * row, every row is SENT, the sink saw each at least once, and repeats carry one Idempotency-Key.
 *
 *   bun scripts/chaos.ts [--alerts N] [--kills N] [--seed N] [--rate N] [--match-every N]
 *   ./dev chaos ...      the same
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { migrate } from "../src/adapters/migrations.ts";
import { connectPostgres } from "../src/adapters/postgres.ts";
import { createRandom } from "../src/core/random.ts";
import { RuleAction, RuleChangedSchema } from "../src/gen/alerting/v1/rule_pb.ts";
import { KafkaError, type ProduceRecord, Producer } from "../src/kafka/index.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { createLogger } from "../src/runtime/log.ts";
import { countDeliveries } from "../test/support/invariants.ts";
import { type Pipeline, startPipeline } from "../test/support/pipeline.ts";
import { type StageName, type StageProcess, startStage, stopStage } from "../test/support/stages.ts";
import { ensureInfra } from "./infra.ts";
import { type BrokerStatus, ensureBroker, externalBrokers, runningBrokerPid } from "./kafka.ts";
import { capture, repoRoot, SetupError } from "./process.ts";

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
  /** Progress lines; console.log by default. */
  log: (line: string) => void;
  signal?: AbortSignal;
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
  log: (line) => console.log(line),
};

/** "sigterm": a graceful stop then a restart, one stage at a time (a rolling restart). */
export type FaultKind = "kill" | "sigterm" | "kafka-restart" | "postgres-restart" | "redis-pause";

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

function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
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
 * `./dev infra`'s start of the broker (same properties, same data dir). Retried while the killed one
 * still holds the port: a JVM's leader thread shows as a zombie while its other threads exit.
 */
async function startBrokerAgain(): Promise<BrokerStatus> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ensureBroker();
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
 * Brings back whatever chaos may have left down: the broker (./dev's own, unless KAFKA_BROKERS is
 * set), Postgres and Redis. Safe to call at any time; returns what it had to do.
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
      const status = await startBrokerAgain();
      if (status.startedNow) actions.push(`kafka: started (pid ${status.pid})`);
    } catch (error) {
      actions.push(`kafka: could not be started: ${(error as Error).message}`);
    }
  }
  return actions;
}

// ---------------------------------------------------------------------------------------------
// the stages: current incarnation of each, restart with the same environment, supervision

interface Incarnation {
  stage: StageProcess;
  number: number;
  startedAtMs: number;
}

class StageSet {
  readonly current = new Map<StageName, Incarnation>();
  readonly all: Incarnation[] = [];
  readonly unexpectedExits: StageExit[] = [];
  readonly #envs = new Map<StageName, Record<string, string>>();
  readonly #intentional = new Set<number>();
  readonly #restarting = new Set<StageName>();
  #stopping = false;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly clock: () => number,
    private readonly log: (line: string) => void,
  ) {
    for (const stage of pipeline.stages) {
      this.#envs.set(stage.name, environOf(stage.process.pid));
      this.#adopt(stage, 1);
    }
  }

  isRestarting(name: StageName): boolean {
    return this.#restarting.has(name);
  }

  get(name: StageName): Incarnation {
    const incarnation = this.current.get(name);
    if (!incarnation) throw new Error(`no stage ${name}`);
    return incarnation;
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

  async #replace(
    name: StageName,
    stop: (stage: StageProcess) => Promise<number | null>,
  ): Promise<{ successor: Incarnation; code: number | null; afterMs: number }> {
    const { stage, number } = this.get(name);
    this.#restarting.add(name);
    this.#intentional.add(stage.process.pid);
    const stoppingAtMs = performance.now();
    const code = await stop(stage);
    const afterMs = Math.round(performance.now() - stoppingAtMs);
    return { successor: await this.#restart(name, number + 1), code, afterMs };
  }

  /** From now on exits are expected: pipeline.stop() terminates the current incarnations. */
  stopSupervising(): void {
    this.#stopping = true;
  }

  async #restart(name: StageName, number: number): Promise<Incarnation> {
    const env = this.#envs.get(name) as Record<string, string>;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const stage = await startStage(name, env);
          return this.#adopt(stage, number);
        } catch (error) {
          if (attempt >= 5 || this.#stopping) throw error;
          this.log(`chaos: ${name} did not start (${(error as Error).message.split("\n")[0]}), again`);
          await Bun.sleep(1000);
        }
      }
    } finally {
      this.#restarting.delete(name);
    }
  }

  #adopt(stage: StageProcess, number: number): Incarnation {
    const previous = this.current.get(stage.name);
    const index = previous ? this.pipeline.stages.indexOf(previous.stage) : -1;
    // pipeline.stop() stops what pipeline.stages holds: keep it pointing at the live processes.
    if (index >= 0) this.pipeline.stages[index] = stage;
    else if (!this.pipeline.stages.includes(stage)) this.pipeline.stages.push(stage);
    const incarnation = { stage, number, startedAtMs: this.clock() };
    this.current.set(stage.name, incarnation);
    this.all.push(incarnation);
    void stage.process.exited.then((code) => {
      if (this.#intentional.has(stage.process.pid) || this.#stopping) return;
      if (this.current.get(stage.name) !== incarnation) return;
      const exit = {
        stage: stage.name,
        code,
        atS: Math.round(this.clock() / 100) / 10,
        lastLines: stage.output.slice(-15),
      };
      this.unexpectedExits.push(exit);
      this.log(`chaos: ${stage.name} exited by itself (code ${code}); restarting it as a supervisor would`);
      this.#restarting.add(stage.name);
      this.#restart(stage.name, number + 1).catch((error: unknown) =>
        this.log(`chaos: ${stage.name} could not be restarted: ${(error as Error).message}`),
      );
    });
    return incarnation;
  }

  writeLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    for (const { stage, number } of this.all)
      writeFileSync(join(dir, `${stage.name}-${number}.log`), `${stage.output.join("\n")}\n`);
  }
}

// ---------------------------------------------------------------------------------------------
// the monitor: SENT rows and each stage's /metrics, polled

class Monitor {
  sent = 0;
  rulesVersion = -1;
  /** records_consumed_total of each stage's current incarnation, keyed "<stage>#<incarnation>". */
  readonly consumed = new Map<string, number>();
  /** Consumer lag and mean batch time of each stage's current incarnation, for the progress line. */
  readonly detail = new Map<StageName, { lag: number; batchMs: number }>();
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

  consumedBy(name: StageName, number: number): number {
    return this.consumed.get(`${name}#${number}`) ?? 0;
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

  /** The evaluator's rules version in force now. */
  async freshRulesVersion(): Promise<number> {
    await this.#scrape(this.stages.get("evaluator"));
    return this.rulesVersion;
  }

  async #scrape({ stage, number }: Incarnation): Promise<void> {
    const response = await fetch(`http://127.0.0.1:${stage.httpPort}/metrics`, {
      signal: AbortSignal.timeout(1000),
    });
    const text = await response.text();
    let consumed = 0;
    for (const match of text.matchAll(/^records_consumed_total\{[^}]*\} ([0-9.e+]+)$/gm))
      consumed += Number(match[1]);
    this.consumed.set(`${stage.name}#${number}`, consumed);
    let lag = 0;
    for (const match of text.matchAll(/^consumer_lag\{[^}]*\} ([0-9.e+-]+)$/gm))
      lag += Math.max(0, Number(match[1]));
    const sum = Number(/^batch_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/m.exec(text)?.[1] ?? 0);
    const count = Number(/^batch_duration_seconds_count\{[^}]*\} ([0-9.e+-]+)$/m.exec(text)?.[1] ?? 0);
    this.detail.set(stage.name, { lag, batchMs: count > 0 ? Math.round((sum / count) * 1000) : 0 });
    if (stage.name === "evaluator") {
      const version = /^rules_version_applied\{[^}]*\} (\d+)/m.exec(text)?.[1];
      if (version !== undefined) this.rulesVersion = Number(version);
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
  /** Pause after the previous fault recovered, so faults hit at random moments. */
  gapMs: number;
}

/**
 * The fault plan of a seed: the first four kills hit every consuming stage once (in random order),
 * the others a random stage (never the one just killed); the infrastructure faults go anywhere but
 * first, so the pipeline is warm when they hit.
 */
export function planFaults(kills: number, random: () => number, infraFaults = true): PlannedFault[] {
  const targets: ConsumingStage[] = shuffle([...consumingStages], random).slice(0, Math.max(kills, 0));
  while (targets.length < kills) {
    const previous = targets.at(-1);
    const choices = consumingStages.filter((s) => s !== previous);
    targets.push(choices[Math.floor(random() * choices.length)] as ConsumingStage);
  }
  const plan: Omit<PlannedFault, "gapMs">[] = targets.map((target) => ({ kind: "kill" as const, target }));
  for (const kind of infraFaults ? (["kafka-restart", "postgres-restart", "redis-pause"] as const) : []) {
    plan.splice(1 + Math.floor(random() * plan.length), 0, { kind });
  }
  return plan.map((fault) => ({ ...fault, gapMs: 500 + Math.floor(random() * 3000) }));
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
    : planFaults(options.kills, random, options.infraFaults);
  const t0 = performance.now();
  const clock = () => performance.now() - t0;
  const seconds = (ms: number) => Math.round(ms / 100) / 10;

  const { leaseMs, schedulerIntervalMs } = options;
  const pipeline = await startPipeline({
    stageEnv: { sender: { LEASE_MS: String(leaseMs), SCHEDULER_INTERVAL_MS: String(schedulerIntervalMs) } },
  });
  const stages = new StageSet(pipeline, clock, log);
  const logsDir = join(repoRoot, ".run/chaos", pipeline.run);
  const faults: FaultResult[] = [];
  let monitor: Monitor | undefined;
  let reporter: ReturnType<typeof setInterval> | undefined;
  let stopExitCodes: Record<string, number | null> = {};
  let faultsDone = false;
  try {
    // Clients A and B have a rule on "chaos-cpu", client C on "chaos-disk"; a probe client gets
    // rules on names no alert has, to see rule changes travel to the evaluator.
    const a = await pipeline.createClientWithRule("chaos-cpu");
    const b = await pipeline.createClientWithRule("chaos-cpu");
    const c = await pipeline.createClientWithRule("chaos-disk");
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
    let sinkIndex = 0;
    const ourHooks = new Set(clientIds.map((id) => `/hook/${id}`));
    const foldSink = () => {
      const received = pipeline.sink.received;
      for (; sinkIndex < received.length; sinkIndex++) {
        const request = received[sinkIndex];
        if (!request || !ourHooks.has(request.path)) continue;
        const clientId = request.path.slice("/hook/".length);
        const { alertId } = JSON.parse(request.body) as { alertId: string };
        if (alertId.startsWith("canary-")) continue;
        const key = `${clientId}|${alertId}`;
        sinkSeen.push(key);
        const keys = sinkKeys.get(key) ?? new Set<string>();
        keys.add(request.headers.get("idempotency-key") ?? "");
        sinkKeys.set(key, keys);
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
        waitUntil(
          () => activeMonitor.consumedBy(target, successor.number) > 0 || allSent(),
          trackTimeoutMs,
          signal,
        );
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
      await startBrokerAgain();
      const backAtMs = clock();
      const evaluator = stages.get("evaluator");
      const from = activeMonitor.consumedBy("evaluator", evaluator.number);
      const flowing = await waitUntil(
        () => {
          const now = stages.get("evaluator");
          const consumed = activeMonitor.consumedBy("evaluator", now.number);
          return (now === evaluator ? consumed > from : consumed > 0) || stream.done;
        },
        trackTimeoutMs,
        signal,
      );
      const acknowledged = await waitUntil(
        () => stream.lastAckAtMs > backAtMs || stream.done,
        trackTimeoutMs,
      );
      const resumed = flowing && acknowledged && (await sentGrows());
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
      const stagesNow = consumingStages
        .map((name) => {
          const detail = activeMonitor.detail.get(name);
          return detail ? `${name} lag ${detail.lag} batch ${detail.batchMs} ms` : name;
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
        if (planned.kind === "kill" || planned.kind === "sigterm")
          faults.push(await replaceStage(planned.kind, planned.target as StageName));
        else if (planned.kind === "kafka-restart") faults.push(await restartBroker());
        else if (planned.kind === "postgres-restart") faults.push(await restartPostgres());
        else faults.push(await pauseRedis());
      }
    } finally {
      faultsDone = true;
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
    const notSent = rows.filter((r) => r.status !== "SENT").length;

    await monitor.stop();
    monitor = undefined;
    stages.stopSupervising();
    const codes = await pipeline.stop();
    stopExitCodes = Object.fromEntries(pipeline.stages.map((s, i) => [s.name, codes[i] ?? null]));

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
    const notRecovered = faults.filter((f) => !f.skipped && f.recoveryMs === undefined);
    if (notRecovered.length > 0)
      violations.push(`no progress after: ${notRecovered.map((f) => `${f.kind} ${f.target}`).join(", ")}`);

    return {
      run: pipeline.run,
      seed: options.seed,
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
    const what = `${f.kind} ${f.target}`;
    if (f.skipped) {
      lines.push(`    ${String(f.atS).padStart(6)} s  ${what.padEnd(44)} skipped: ${f.skipped}`);
      continue;
    }
    const recovery =
      f.recoveryMs === undefined ? "NOT recovered" : `recovery ${(f.recoveryMs / 1000).toFixed(1)} s`;
    const exit = f.exit ? `  exit ${f.exit.code} after ${(f.exit.afterMs / 1000).toFixed(1)} s` : "";
    lines.push(
      `    ${String(f.atS).padStart(6)} s  ${what.padEnd(44)} back ${(f.downMs / 1000).toFixed(1).padStart(5)} s  ${recovery}${exit}`,
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

export const usage = `usage: ./dev chaos [--alerts N] [--kills N] [--seed N] [--rate N] [--match-every N]
  --alerts N       alerts in the stream (default ${defaultChaosOptions.alerts})
  --kills N        kill -9 faults over the consuming stages (default ${defaultChaosOptions.kills}, at least 4)
  --seed N         seed of the fault plan (default ${defaultChaosOptions.seed})
  --rate N         alerts per second (default ${defaultChaosOptions.ratePerS})
  --match-every N  3 notifications per N alerts (default ${defaultChaosOptions.matchEvery})
  --broker-stop kill|term   how the broker goes down (default kill)
  --no-infra       stage kills only: no broker or Postgres restart, no Redis pause
  --rolling        a rolling restart instead: SIGTERM each stage once, each must exit 0 within 5 s
Also restarts the Kafka broker, Postgres and pauses Redis once (not with --rolling). Exit 0 only without loss or
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
    else throw new SetupError(`unknown flag ${flag}\n${usage}`);
  }
  return options;
}

/** `./dev chaos`: infra and migrations, then the run; exit 0 only if every invariant held. */
export async function chaosCommand(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    return 0;
  }
  const options = parseChaosFlags(args);
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
