/**
 * End-to-end pipeline benchmark: `./dev bench pipeline [--alerts N] [--rate R[,R...]] [--warm-up N]
 * [--clients C] [--env [stage.]KEY=VALUE ...] [--idle-timeout S] [--phase-timeout S] [--idle-s S]
 * [--group-by LABEL [--group-interval-ms MS]] [--partitions N]`.
 *
 * Every stage runs as its own process (harness/pipeline.ts: own topics of --partitions partitions,
 * groups, Redis prefix)
 * against the local broker, Postgres and Redis; webhooks go to a sink process (bench/pipeline/sink.ts).
 * C clients (default 100) each get one rule (HIGH, source, a<i>) and one webhook endpoint; alert k is
 * named a<k % C>, so each alert matches exactly one client. After a warm-up (one alert per client,
 * until every client got its webhook, then --warm-up alerts at R/s, default 50k, reported apart: the
 * first seconds run cold JIT tiers, and the backlog they build would read as latency long after),
 * two phases push N alerts (default 200k) each:
 *
 *   fixed  at R alerts/s (default 5k/s), event_time_unix_ms set when each batch is produced; one
 *          phase per rate when several are given (`--rate 1000,2000`);
 *   max    as fast as the producer goes (batches of 5000, up to 20 unacknowledged).
 *
 * With --group-by LABEL (severity, source, name or a context key; issue 17), a third phase follows:
 * every rule is changed through the rule API to group by LABEL (group_wait and group_interval
 * --group-interval-ms, default 1000; 1000 alerts listed per message) and to its own source
 * `<source>-<i>`, so C clients get alerts from C sources: C groups. After a warm-up round it pushes
 * N alerts as fast as the producer goes ("max grouped"), and the bench reports, next to alerts/s, the
 * webhook requests/s at the sink of both max phases and the grouped/ungrouped ratio of alerts/s
 * (target >= 3x: grouping makes the outbound requests a matter of groups, not alerts).
 *
 * Then --idle-s seconds (default 20) with no alerts: CPU per stage and of the broker (also read for
 * as long, up to 10 s, before the stages started: the broker is shared). CPU per alert per phase is
 * summed over the stages, the broker and Postgres (bench/pipeline/cpu-report.ts); the sink's is
 * reported apart.
 *
 * Per phase: sustained alerts/s end to end (first alert produced -> last first-delivery at the
 * sink), latency from the alert's event time to its delivery at the sink (p50/p95/p99/max), per
 * stage records/s (from /metrics deltas), batch time, peak consumer lag, CPU per process
 * (/proc/<pid>/stat) and peak RSS (VmHWM, reset per phase), and lost / duplicate counts from
 * Postgres (rows per (client, alert)) and the sink (deliveries per alert id), and the latency split at
 * each notification row's created_at. Then the limits of this machine in the same run: kcat producing
 * and consuming N records of the alerts' size, the aggregator's dedupe insert on a scratch copy of
 * `notifications` (bench/pipeline/ceilings.ts), and from those plus the sender's statements and one
 * webhook POST (the sender's Http1Client) each measured alone, the CPU floor per alert and the rate it
 * allows.
 *
 * Writes results/pipeline-<time>.json and .svg (throughput and p99 per second). Deletes its own
 * clients' rows (deliveries, notifications, endpoints, rules, clients) at the end.
 * Targets (2 cores, all co-located): >= 25k alerts/s end to end; p99 <= 100 ms at 5k alerts/s; at
 * each fixed everyday rate CPU per alert <= 2 x max's; max >= 0.9 x the CPU floor's rate; idle
 * <= 3% of a core per stage, broker <= 5%.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type Pipeline, startPipeline } from "../harness/pipeline.ts";
import type { StageName } from "../harness/stages.ts";
import { webhookPayload } from "../src/channels/webhook.ts";
import { Admin, type ProduceRecord } from "../src/kafka/index.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { createLogger } from "../src/runtime/log.ts";
import { table } from "./match.ts";
import { AlertEncoder, alertId, alertName, checkEncoding } from "./pipeline/alerts.ts";
import {
  type CpuFloor,
  cpuFloor,
  type KcatCeiling,
  kcatCeiling,
  type MachineCpu,
  machineCpu,
  netCpuUs,
  type PostgresCeiling,
  postgresCeiling,
  webhookCeiling,
} from "./pipeline/ceilings.ts";
import { chartSvg, type Panel } from "./pipeline/chart.ts";
import {
  cpuPercentOver,
  cpuUsPerAlert,
  everydayCpuRatioMax,
  floorRateFractionMin,
  type IdleCpu,
  idleVerdicts,
  pipelineProcesses,
} from "./pipeline/cpu-report.ts";
import {
  brokerPid,
  compilerCpuSeconds,
  cpuSeconds,
  type KafkaRequests,
  machineCpuSeconds,
  memoryMiB,
  postgresCpuOf,
  resetPeak,
  type StageCounters,
  stageCounters,
  threadWaits,
} from "./pipeline/procs.ts";
import { startCpuMeter } from "./support/cpu.ts";
import {
  insertClients,
  newClients,
  type PostCeiling,
  type SenderStatementsCeiling,
  senderStatementsCeiling,
} from "./support/sender-work.ts";

const repoRoot = new URL("..", import.meta.url).pathname;
const e2eTarget = 25_000;
const p99TargetMs = 100;
const maxBatch = 5000;
const maxBatchesInFlight = 20;

// ---------------------------------------------------------------------------------------- flags

interface Flags {
  alerts: number;
  /** One fixed-rate phase per rate, in order. */
  rates: number[];
  /** Alerts at the fixed rate before the measured phases, reported apart and not held to targets. */
  warmUpAlerts: number;
  clients: number;
  idleTimeoutS: number;
  phaseTimeoutS: number;
  /** Seconds of CPU measured with no alerts after the phases; 0 skips it. */
  idleS: number;
  env: Map<string, string>;
  /** The label the grouped phase groups by; undefined: no grouped phase. */
  groupBy: string | undefined;
  groupIntervalMs: number;
  /** Partitions of every topic of the run; `./dev topics` creates TOPIC_PARTITIONS (6). */
  partitions: number;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = {
    alerts: 200_000,
    rates: [5000],
    warmUpAlerts: 50_000,
    clients: 100,
    idleTimeoutS: 30,
    phaseTimeoutS: 300,
    idleS: 20,
    env: new Map(),
    groupBy: undefined,
    groupIntervalMs: 1000,
    partitions: 6,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.includes("=") && arg.startsWith("--") ? arg.split(/=(.*)/s, 2) : [arg];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    const positive = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
      return v;
    };
    if (name === "--alerts") flags.alerts = Math.round(positive());
    else if (name === "--rate")
      flags.rates = value()
        .split(",")
        .map((part) => {
          const rate = Number(part);
          if (!Number.isFinite(rate) || rate <= 0)
            throw new Error("--rate takes positive numbers, comma-separated");
          return rate;
        });
    else if (name === "--idle-s") {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error("--idle-s must be a number >= 0");
      flags.idleS = v;
    } else if (name === "--warm-up") {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw new Error("--warm-up must be a whole number >= 0");
      flags.warmUpAlerts = v;
    } else if (name === "--clients") flags.clients = Math.round(positive());
    else if (name === "--idle-timeout") flags.idleTimeoutS = positive();
    else if (name === "--group-by") flags.groupBy = value();
    else if (name === "--group-interval-ms") flags.groupIntervalMs = Math.round(positive());
    else if (name === "--phase-timeout") flags.phaseTimeoutS = positive();
    else if (name === "--partitions") flags.partitions = Math.round(positive());
    else if (name === "--env") {
      const [key, v] = value().split(/=(.*)/s, 2);
      if (!key || v === undefined) throw new Error("--env takes [stage.]KEY=VALUE");
      flags.env.set(key, v);
    } else if (name === "--help" || name === "-h") {
      console.log(
        "usage: ./dev bench pipeline [--alerts N=200000] [--rate R[,R...]=5000] [--warm-up N=50000] [--clients C=100] " +
          "[--env [stage.]KEY=VALUE]... [--idle-timeout S=30] [--phase-timeout S=300] [--idle-s S=20] " +
          "[--group-by LABEL [--group-interval-ms MS=1000]] [--partitions N=6]",
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${arg} (--help lists them)`);
  }
  return flags;
}

// ----------------------------------------------------------------------------- stage settings

const consumeStages = ["evaluator", "aggregator", "sender"] as const;
type ConsumeStage = (typeof consumeStages)[number];
const allStages: StageName[] = ["rule-service", "rule-updater", ...consumeStages];

/** The knobs the bench sets, at the stages' own defaults unless --env overrides them. */
function stageSettings(overrides: Map<string, string>): Record<StageName, Record<string, string>> {
  const loop = { BATCH_SIZE_MAX: "2000" };
  const settings: Record<StageName, Record<string, string>> = {
    "rule-service": {},
    "rule-updater": {},
    evaluator: { ...loop },
    aggregator: { ...loop },
    sender: {
      ...loop,
      ENDPOINT_RATE_PER_SECOND: "50000",
      ENDPOINT_BURST: "5000",
      ENDPOINT_CONCURRENCY_MAX: "256",
      ENDPOINT_QUEUE_MAX: "20000",
      // The sink counts a group message's alerts from its alertIds: the body must list every one.
      GROUP_BODY_BYTES_MAX: String(64 * 1024 * 1024),
    },
  };
  for (const [key, value] of overrides) {
    const dot = key.indexOf(".");
    const stage = dot > 0 ? (key.slice(0, dot) as StageName) : undefined;
    const variable = dot > 0 ? key.slice(dot + 1) : key;
    if (stage !== undefined && !allStages.includes(stage)) throw new Error(`--env: no stage ${stage}`);
    for (const name of stage ? [stage] : consumeStages) settings[name][variable] = value;
  }
  return settings;
}

// ------------------------------------------------------------------------------------ the sink

interface Sink {
  process: Subprocess<"ignore", "pipe", "inherit">;
  port: number;
  url(path: string): string;
  startPhase(phase: string, alerts: number): Promise<void>;
  progress(phase: string): Promise<{ delivered: number; requests: number; unknown: number }>;
  report(
    phase: string,
    alerts: number,
  ): Promise<{ deliveredAtMs: Float64Array; eventMs: Float64Array; counts: Uint16Array }>;
  stop(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "pipeline/sink.ts")], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error("the sink exited before it listened");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const { port, controlPort } = JSON.parse(text.split("\n")[0] as string) as {
    port: number;
    controlPort: number;
  };
  const base = `http://127.0.0.1:${port}`;
  const control = `http://127.0.0.1:${controlPort}`;
  return {
    process: child,
    port,
    url: (path) => `${base}${path}`,
    async startPhase(phase, alerts) {
      await fetch(`${control}/phase/${phase}?alerts=${alerts}`, { method: "POST" });
    },
    async progress(phase) {
      return (await (await fetch(`${control}/progress/${phase}`)).json()) as {
        delivered: number;
        requests: number;
        unknown: number;
      };
    },
    async report(phase, alerts) {
      const bytes = new Uint8Array(await (await fetch(`${control}/report/${phase}`)).arrayBuffer());
      const copy = (offset: number, length: number) => bytes.slice(offset, offset + length).buffer;
      return {
        deliveredAtMs: new Float64Array(copy(0, alerts * 8)),
        eventMs: new Float64Array(copy(alerts * 8, alerts * 8)),
        counts: new Uint16Array(copy(alerts * 16, alerts * 2)),
      };
    },
    async stop() {
      child.kill("SIGTERM");
      await Promise.race([child.exited, Bun.sleep(3000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

// ------------------------------------------------------------------------------- the workload

interface Setup {
  pipeline: Pipeline;
  sink: Sink;
  encoder: AlertEncoder;
  run: string;
  clientIds: string[];
  ruleIds: string[];
  /** pid per sampled process: the five stages, the sink, this process, the broker. */
  pids: Map<string, number>;
}

async function createClients(pipeline: Pipeline, sink: Sink, count: number, run: string) {
  const clientIds: string[] = new Array(count);
  const ruleIds: string[] = new Array(count);
  const check = (what: string, response: { status: number; body: Record<string, unknown> }) => {
    if (response.status !== 201)
      throw new Error(`${what}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.id as string;
  };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const clientId = check(
        "create client",
        await pipeline.api("POST", "/api/v1/clients", { name: `bench-pipeline-${run}-${i}` }),
      );
      clientIds[i] = clientId;
      const ruleId = check(
        "create rule",
        await pipeline.api("POST", "/api/v1/rules", {
          client_id: clientId,
          severity: "HIGH",
          source: pipeline.source,
          name: alertName(i),
        }),
      );
      ruleIds[i] = ruleId;
      check(
        "create endpoint",
        await pipeline.api("POST", `/api/v1/rules/${ruleId}/endpoints`, {
          type: "webhook",
          value: sink.url(`/hook/${clientId}`),
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { clientIds, ruleIds };
}

/**
 * The grouped phase's rules: each rule groups by `label` and matches its own source `<source>-<i>`
 * (C sources, so C groups), changed through the rule API as a client would. Returns the encoder of
 * alerts from those sources.
 */
async function groupRules(setup: Setup, label: string, intervalMs: number): Promise<AlertEncoder> {
  const { pipeline, clientIds, ruleIds } = setup;
  const sources = clientIds.map((_, i) => `${pipeline.source}-${i}`);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < ruleIds.length; i = next++) {
      const path = `/api/v1/rules/${ruleIds[i]}`;
      const current = await pipeline.api("GET", path);
      const reply = await pipeline.api("PATCH", path, {
        version: current.body.version,
        source: sources[i],
        group_by: [label],
        group_wait_ms: intervalMs,
        group_interval_ms: intervalMs,
        // The most a message lists: the sink counts every alert from its alertIds either way.
        group_alerts_max: 1000,
      });
      if (reply.status !== 200) throw new Error(`group rule: ${reply.status} ${JSON.stringify(reply.body)}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const encoder = new AlertEncoder(sources, clientIds);
  checkEncoding(encoder);
  return encoder;
}

/** One alert per client until every client got one delivered: all rules are in the evaluator's snapshot. */
async function warmUp(setup: Setup, clients: number, prefix = "w"): Promise<number> {
  const { pipeline, sink, encoder, run } = setup;
  const start = performance.now();
  for (let round = 0; ; round++) {
    // Each round's alert ids are new: a repeated id would be deduplicated, never delivered.
    const phase = `${prefix}${round}`;
    await sink.startPhase(phase, clients);
    const eventMs = Date.now();
    await pipeline.producer.send(
      Array.from({ length: clients }, (_, i) => ({
        topic: pipeline.topics.alertsNew,
        value: encoder.encode(alertId(run, phase, i), i, eventMs),
      })),
    );
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      if ((await sink.progress(phase)).delivered === clients) return (performance.now() - start) / 1000;
      await Bun.sleep(100);
    }
    if (performance.now() - start > 120_000)
      throw new Error("warm-up: not every client got its webhook in 2 min");
  }
}

/** Who the broker and Postgres are right now: a change means one was restarted. */
async function infraIdentity(setup: Setup): Promise<{ broker: string; postgres: string }> {
  let postgres = "unknown";
  try {
    const [row] = await setup.pipeline.sql<
      { started: string }[]
    >`SELECT pg_postmaster_start_time()::text AS started`;
    postgres = row?.started ?? "unknown";
  } catch {
    // Down right now: counts as unknown.
  }
  return { broker: String(brokerPid(repoRoot)), postgres };
}

interface Sample {
  /** Seconds since the phase's first alert was produced. */
  t: number;
  producedAlerts: number;
  delivered: number;
  stages: Partial<Record<ConsumeStage, StageCounters>>;
  cpu: Record<string, number>;
  machine: { busy: number; total: number };
  /** Transactions committed or rolled back in the run's database so far (pg_stat_database). */
  pgTransactions: number;
  /** Each stage's threadWaits so far. */
  waits: Partial<Record<ConsumeStage, number>>;
}

/** The part of the broker's CPU its JIT compiler threads used: counted in "kafka", shown apart. */
const brokerCompilerKey = "kafka JIT";

const postgresCpu = postgresCpuOf(new URL(infraUrls.postgresUrl).pathname.slice(1));

function sampleCpu(pids: Map<string, number>): Record<string, number> {
  // The broker may have been restarted (by a chaos run elsewhere): follow its pid file.
  const broker = brokerPid(repoRoot);
  if (broker !== undefined) pids.set("kafka", broker);
  const cpu: Record<string, number> = {};
  for (const [name, pid] of pids) cpu[name] = cpuSeconds(pid) ?? Number.NaN;
  cpu[brokerCompilerKey] = broker === undefined ? Number.NaN : compilerCpuSeconds(broker);
  cpu.postgres = postgresCpu.sample();
  return cpu;
}

/** The stages' statements are autocommitted one by one (or a few in one transaction): these count them. */
async function pgTransactions(setup: Setup): Promise<number> {
  const [row] = await setup.pipeline.sql<{ n: string }[]>`
    SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`;
  return Number(row?.n ?? Number.NaN);
}

async function takeSample(
  setup: Setup,
  phase: string,
  startMs: number,
  producedAlerts: number,
): Promise<Sample> {
  const stages: Partial<Record<ConsumeStage, StageCounters>> = {};
  await Promise.all(
    setup.pipeline.stages
      .filter((s): s is typeof s & { name: ConsumeStage } =>
        (consumeStages as readonly string[]).includes(s.name),
      )
      .map(async (s) => {
        const counters = await stageCounters(s.httpPort);
        if (counters) stages[s.name] = counters;
      }),
  );
  return {
    t: (Date.now() - startMs) / 1000,
    producedAlerts,
    delivered: (await setup.sink.progress(phase)).delivered,
    stages,
    cpu: sampleCpu(setup.pids),
    machine: machineCpuSeconds(),
    pgTransactions: await pgTransactions(setup),
    waits: Object.fromEntries(
      consumeStages.map((stage) => [stage, threadWaits(setup.pids.get(stage) ?? Number.NaN)]),
    ),
  };
}

interface PhaseRaw {
  phase: string;
  label: string;
  alerts: number;
  firstProducedMs: number;
  lastProducedMs: number;
  drainedMs: number;
  complete: boolean;
  samples: Sample[];
  producedEventMs: Float64Array;
  report: { deliveredAtMs: Float64Array; eventMs: Float64Array; counts: Uint16Array };
  /** Webhook requests the sink received for the phase: one per alert, or one per group message. */
  requests: number;
  peakRssMiB: Record<string, number>;
  peakReset: boolean;
  /** Broker or Postgres restarted during the phase (a chaos run elsewhere): what changed. */
  restarts: string[];
}

/** A phase: `n` alerts at `rate` per second (undefined: as fast as the producer goes). */
interface PhasePlan {
  phase: string;
  label: string;
  rate: number | undefined;
  n: number;
}

async function runPhase(setup: Setup, flags: Flags, { phase, label, rate, n }: PhasePlan): Promise<PhaseRaw> {
  const { pipeline, sink, encoder, run, pids } = setup;
  await sink.startPhase(phase, n);
  let peakReset = true;
  // Not the broker's: it is shared with other runs, and its peak is its 1 GiB heap anyway.
  for (const [name, pid] of pids) if (name !== "kafka") peakReset = resetPeak(pid) && peakReset;
  const producedEventMs = new Float64Array(n);
  const samples: Sample[] = [];
  let produced = 0;
  const infraBefore = await infraIdentity(setup);
  const firstProducedMs = Date.now();
  samples.push(await takeSample(setup, phase, firstProducedMs, 0));
  let sampling = true;
  const sampler = (async () => {
    let nextAt = firstProducedMs + 1000;
    while (sampling) {
      await Bun.sleep(Math.max(0, nextAt - Date.now()));
      nextAt += 1000;
      if (sampling) samples.push(await takeSample(setup, phase, firstProducedMs, produced));
    }
  })();

  const batchOf = (first: number, count: number): ProduceRecord[] => {
    const eventMs = Date.now();
    const records: ProduceRecord[] = new Array(count);
    for (let i = 0; i < count; i++) {
      producedEventMs[first + i] = eventMs;
      records[i] = {
        topic: pipeline.topics.alertsNew,
        value: encoder.encode(alertId(run, phase, first + i), first + i, eventMs),
      };
    }
    return records;
  };
  const inFlight = new Set<Promise<void>>();
  let sendError: unknown;
  const send = (records: ProduceRecord[]) => {
    const promise = pipeline.producer.send(records).catch((error: unknown) => {
      sendError ??= error;
    });
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  };
  const startPerf = performance.now();
  if (rate === undefined) {
    while (produced < n) {
      const count = Math.min(maxBatch, n - produced);
      send(batchOf(produced, count));
      produced += count;
      while (inFlight.size >= maxBatchesInFlight) await Promise.race(inFlight);
    }
  } else {
    while (produced < n) {
      const due = Math.min(n, Math.floor(((performance.now() - startPerf) / 1000) * rate) + 1);
      if (due > produced) {
        send(batchOf(produced, due - produced));
        produced = due;
      }
      await Bun.sleep(1);
    }
  }
  const lastProducedMs = Date.now();
  await Promise.all(inFlight);
  if (sendError) throw sendError;
  console.log(
    `  ${label}: produced ${n.toLocaleString("en-US")} alerts in ${((lastProducedMs - firstProducedMs) / 1000).toFixed(1)} s`,
  );

  // Drain: until every alert was delivered, or nothing new arrived for idleTimeoutS.
  let delivered = 0;
  let lastChangeMs = Date.now();
  let lastReportMs = Date.now();
  const deadlineMs = firstProducedMs + flags.phaseTimeoutS * 1000;
  while (delivered < n && Date.now() - lastChangeMs < flags.idleTimeoutS * 1000 && Date.now() < deadlineMs) {
    await Bun.sleep(200);
    const now = (await sink.progress(phase)).delivered;
    if (now !== delivered) lastChangeMs = Date.now();
    delivered = now;
    if (Date.now() - lastReportMs >= 10_000) {
      lastReportMs = Date.now();
      console.log(
        `  ${label}: ${delivered.toLocaleString("en-US")} delivered after ${((Date.now() - firstProducedMs) / 1000).toFixed(0)} s`,
      );
    }
  }
  const drainedMs = Date.now();
  await Bun.sleep(1500); // late duplicates, and one more sample after the last delivery
  sampling = false;
  await sampler;
  samples.push(await takeSample(setup, phase, firstProducedMs, produced));
  const peakRssMiB: Record<string, number> = {};
  for (const [name, pid] of pids) peakRssMiB[name] = memoryMiB(pid)?.peak ?? Number.NaN;
  const report = await sink.report(phase, n);
  const { requests } = await sink.progress(phase);
  const infraAfter = await infraIdentity(setup);
  const restarts: string[] = [];
  if (infraBefore.broker !== infraAfter.broker) restarts.push("Kafka broker restarted");
  if (infraBefore.postgres !== infraAfter.postgres) restarts.push("Postgres restarted");
  if (restarts.length > 0) console.log(`  ${label}: WARNING: ${restarts.join(", ")} during this phase`);
  console.log(
    `  ${label}: ${delivered === n ? "all" : `${delivered.toLocaleString("en-US")} of ${n.toLocaleString("en-US")}`} delivered ` +
      `after ${((drainedMs - firstProducedMs) / 1000).toFixed(1)} s${delivered === n ? "" : Date.now() >= deadlineMs ? ` (phase timeout ${flags.phaseTimeoutS} s)` : ` (nothing new for ${flags.idleTimeoutS} s)`}`,
  );
  return {
    phase,
    label,
    alerts: n,
    firstProducedMs,
    lastProducedMs,
    drainedMs,
    complete: delivered === n,
    samples,
    producedEventMs,
    report,
    requests,
    peakRssMiB,
    peakReset,
    restarts,
  };
}

// ----------------------------------------------------------------------------------- analysis

interface DbCounts {
  rows: number;
  pairs: number;
  alertsWithRow: number;
  wrongClient: number;
  sent: number;
  notSent: number;
  /** SUCCESS delivery rows, and for grouped rows: those whose group message has a SUCCESS. */
  successDeliveries: number;
  deliveries: number;
  /** Group messages that carried the phase's rows (0 when ungrouped). */
  groupSends: number;
}

/**
 * Retries `work` while Postgres is unreachable (restarted by a chaos run elsewhere: it happens on
 * this shared machine), for up to 2 minutes.
 */
async function whilePostgresIsBack<T>(what: string, work: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + 120_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      const transient = /ECONNREFUSED|ECONNRESET|CONNECTION_|57P0|08\d\d\d/.test(code);
      if (!transient || performance.now() > deadline) throw error;
      if (attempt === 1) console.log(`  ${what}: Postgres unreachable (${code}); retrying for up to 2 min`);
      await Bun.sleep(2000);
    }
  }
}

async function dbCounts(setup: Setup, phase: string): Promise<DbCounts> {
  return whilePostgresIsBack("counting rows", () => dbCountsOnce(setup, phase));
}

async function dbCountsOnce(setup: Setup, phase: string): Promise<DbCounts> {
  const { sql } = setup.pipeline;
  const prefix = `${alertId(setup.run, phase, 0).slice(0, -1)}%`;
  const [row] = await sql.unsafe<Record<string, string>[]>(
    `SELECT count(*) AS rows, count(DISTINCT (client_id, scope, alert_id)) AS pairs, count(DISTINCT alert_id) AS alerts,
            count(*) FILTER (WHERE client_id <> ($2::uuid[])[(substring(alert_id from '[0-9]+$')::bigint % $3) + 1]) AS wrong,
            count(*) FILTER (WHERE status = 'SENT') AS sent, count(*) FILTER (WHERE status <> 'SENT') AS not_sent
     FROM notifications WHERE client_id = ANY($2::uuid[]) AND alert_id LIKE $1`,
    [prefix, setup.clientIds, setup.clientIds.length] as never[],
  );
  const [deliveries] = await sql.unsafe<Record<string, string>[]>(
    `SELECT count(*) AS all, count(*) FILTER (WHERE d.outcome = 'SUCCESS') AS success
     FROM deliveries d JOIN notifications n ON n.id = d.notification_id
     WHERE n.client_id = ANY($2::uuid[]) AND n.alert_id LIKE $1`,
    [prefix, setup.clientIds] as never[],
  );
  const [grouped] = await sql.unsafe<Record<string, string>[]>(
    `SELECT count(DISTINCT n.group_send_id) AS sends,
            count(*) FILTER (WHERE EXISTS (SELECT 1 FROM group_deliveries d
                                           WHERE d.group_send_id = n.group_send_id AND d.outcome = 'SUCCESS')) AS success
     FROM notifications n WHERE n.client_id = ANY($2::uuid[]) AND n.alert_id LIKE $1 AND n.group_send_id IS NOT NULL`,
    [prefix, setup.clientIds] as never[],
  );
  return {
    rows: Number(row?.rows),
    pairs: Number(row?.pairs),
    alertsWithRow: Number(row?.alerts),
    wrongClient: Number(row?.wrong),
    sent: Number(row?.sent),
    notSent: Number(row?.not_sent),
    successDeliveries: Number(deliveries?.success) + Number(grouped?.success),
    deliveries: Number(deliveries?.all),
    groupSends: Number(grouped?.sends),
  };
}

/** p50 and p99 of each half of the latency: where an alert waited. */
interface LatencySplit {
  /** Event time -> the notification row's created_at: evaluator, aggregator and two Kafka hops. */
  toRowMs: { p50: number; p99: number };
  /** created_at -> first delivery at the sink: notifications.ready, the sender, the POST. */
  rowToSinkMs: { p50: number; p99: number };
}

async function latencySplit(setup: Setup, raw: PhaseRaw): Promise<LatencySplit> {
  const { sql } = setup.pipeline;
  const prefix = `${alertId(setup.run, raw.phase, 0).slice(0, -1)}%`;
  const rows = await whilePostgresIsBack("reading row times", () =>
    sql.unsafe<{ i: number; created_ms: number }[]>(
      `SELECT substring(alert_id from '[0-9]+$')::int AS i, extract(epoch from created_at)::float8 * 1000 AS created_ms
       FROM notifications WHERE client_id = ANY($2::uuid[]) AND alert_id LIKE $1`,
      [prefix, setup.clientIds] as never[],
    ),
  );
  const { deliveredAtMs, eventMs, counts } = raw.report;
  const toRow: number[] = [];
  const rowToSink: number[] = [];
  for (const { i, created_ms: createdMs } of rows) {
    if (i < 0 || i >= raw.alerts || counts[i] === 0) continue;
    toRow.push(createdMs - eventTimeOf(raw, eventMs, i));
    rowToSink.push((deliveredAtMs[i] as number) - createdMs);
  }
  toRow.sort((a, b) => a - b);
  rowToSink.sort((a, b) => a - b);
  const pair = (sorted: number[]) => ({ p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) });
  return { toRowMs: pair(toRow), rowToSinkMs: pair(rowToSink) };
}

/** The payload's event time, or the produced one when the sink read none (-1: from a group message's alertIds). */
const eventTimeOf = (raw: PhaseRaw, sinkEventMs: Float64Array, i: number) =>
  sinkEventMs[i] === -1 ? (raw.producedEventMs[i] as number) : (sinkEventMs[i] as number);

const quantile = (sorted: Float64Array | number[], q: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);

interface StageSummary {
  consumedPerS: number;
  /** Records over the seconds from the stage's first consumption to its last (1 s samples). */
  activePerS: number;
  activeS: number;
  producedPerS: number;
  peakConsumedPerS: number;
  meanBatchMs: number;
  batches: number;
  maxLag: number;
  lagAtLastProduce: number;
  /** Kafka requests the stage's clients sent per 1000 alerts of the phase, to its last delivery. */
  kafkaRequestsPerKiloAlert: KafkaRequests;
  /** Its threads' waits (threadWaits) per 1000 alerts, as long. */
  waitsPerKiloAlert: number;
}

interface PhaseResult {
  phase: string;
  label: string;
  alerts: number;
  complete: boolean;
  producerAlertsPerS: number;
  e2eAlertsPerS: number;
  /** Webhook requests at the sink per second over the same span as e2eAlertsPerS. */
  requestsPerS: number;
  requests: number;
  durationS: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  latencySplit: LatencySplit;
  lostAtSink: number;
  duplicatesAtSink: number;
  eventTimeMismatches: number;
  db: DbCounts;
  lostRows: number;
  duplicateRows: number;
  stages: Partial<Record<ConsumeStage, StageSummary>>;
  cpuPercent: Record<string, number>;
  /**
   * The stages', broker's and Postgres's CPU per alert (cpu-report.ts), from the phase's start to
   * the first sample after its last delivery.
   */
  cpuUsPerAlert: number;
  /** The same per process: where it went. */
  cpuUsPerAlertByProcess: Record<string, number>;
  /**
   * Transactions in the run's database per 1000 alerts (the stages' statements; the bench's one
   * sample query a second is taken out).
   */
  pgTransactionsPerKiloAlert: number;
  /** The sink's CPU per alert: apart, it is the harness. */
  sinkCpuUsPerAlert: number;
  /** The whole machine's busy CPU over the same window per alert: every process, others' included. */
  machineCpuUsPerAlert: number;
  machineBusyPercent: number;
  peakRssMiB: Record<string, number>;
  peakRssPerPhase: boolean;
  restarts: string[];
  perSecond: { t: number; delivered: number; p99Ms: number; p50Ms: number }[];
  lagPerSecond: { t: number; evaluator: number; aggregator: number; sender: number }[];
}

async function analyse(setup: Setup, raw: PhaseRaw): Promise<PhaseResult> {
  const { deliveredAtMs, eventMs, counts } = raw.report;
  const latencies: number[] = [];
  let lost = 0;
  let duplicates = 0;
  let mismatches = 0;
  let lastDeliveryMs = raw.firstProducedMs;
  const buckets = new Map<number, number[]>();
  for (let i = 0; i < raw.alerts; i++) {
    const count = counts[i] as number;
    if (count === 0) {
      lost++;
      continue;
    }
    duplicates += count - 1;
    const at = deliveredAtMs[i] as number;
    const latency = at - eventTimeOf(raw, eventMs, i);
    if (eventMs[i] !== -1 && Math.abs((eventMs[i] as number) - (raw.producedEventMs[i] as number)) > 1)
      mismatches++;
    latencies.push(latency);
    lastDeliveryMs = Math.max(lastDeliveryMs, at);
    const second = Math.floor((at - raw.firstProducedMs) / 1000);
    const bucket = buckets.get(second);
    if (bucket) bucket.push(latency);
    else buckets.set(second, [latency]);
  }
  latencies.sort((a, b) => a - b);
  const durationS = (lastDeliveryMs - raw.firstProducedMs) / 1000;
  // Every second from the first alert to the last delivery, those without deliveries included.
  const perSecond = Array.from({ length: Math.max(0, ...buckets.keys()) + 1 }, (_, t) => {
    const values = (buckets.get(t) ?? []).sort((a, b) => a - b);
    return { t, delivered: values.length, p99Ms: quantile(values, 0.99), p50Ms: quantile(values, 0.5) };
  });

  const first = raw.samples[0] as Sample;
  const last = raw.samples.at(-1) as Sample;
  const stages: Partial<Record<ConsumeStage, StageSummary>> = {};
  const lastProducedT = (raw.lastProducedMs - raw.firstProducedMs) / 1000;
  // Per alert: up to the first sample after the last delivery, without the wait for late duplicates.
  const drainedT = (raw.drainedMs - raw.firstProducedMs) / 1000;
  const workEnd = raw.samples.find((sample) => sample.t >= drainedT) ?? last;
  for (const stage of consumeStages) {
    const a = first.stages[stage];
    const b = last.stages[stage];
    if (!a || !b) continue;
    let peak = 0;
    let maxLag = 0;
    let lagAtLastProduce = 0;
    raw.samples.forEach((sample, i) => {
      const counters = sample.stages[stage];
      if (!counters) return;
      maxLag = Math.max(maxLag, counters.lag);
      if (sample.t <= lastProducedT + 1) lagAtLastProduce = counters.lag;
      const previous = raw.samples[i - 1]?.stages[stage];
      if (previous && i > 0) {
        const dt = sample.t - (raw.samples[i - 1] as Sample).t;
        // Samples closer than half a second (after a stall) would give meaningless peaks.
        if (dt >= 0.5) peak = Math.max(peak, (counters.consumed - previous.consumed) / dt);
      }
    });
    const batches = b.batches - a.batches;
    // Active window: from the last sample before it consumed anything to the first after it stopped.
    const startIndex =
      raw.samples.findIndex((sample) => (sample.stages[stage]?.consumed ?? 0) > a.consumed) - 1;
    const endIndex = raw.samples.findIndex((sample) => (sample.stages[stage]?.consumed ?? 0) >= b.consumed);
    const activeS =
      startIndex >= 0 && endIndex > startIndex
        ? (raw.samples[endIndex] as Sample).t - (raw.samples[startIndex] as Sample).t
        : Number.NaN;
    const requestsAtEnd = workEnd.stages[stage]?.kafkaRequests ?? b.kafkaRequests;
    const perKiloAlert = (field: keyof KafkaRequests) =>
      ((requestsAtEnd[field] - a.kafkaRequests[field]) / raw.alerts) * 1000;
    stages[stage] = {
      waitsPerKiloAlert:
        (((workEnd.waits[stage] ?? Number.NaN) - (first.waits[stage] ?? Number.NaN)) / raw.alerts) * 1000,
      kafkaRequestsPerKiloAlert: {
        produce: perKiloAlert("produce"),
        fetch: perKiloAlert("fetch"),
        other: perKiloAlert("other"),
      },
      consumedPerS: (b.consumed - a.consumed) / durationS,
      activePerS: (b.consumed - a.consumed) / activeS,
      activeS,
      producedPerS: (b.produced - a.produced) / durationS,
      peakConsumedPerS: peak,
      meanBatchMs: batches > 0 ? ((b.batchSeconds - a.batchSeconds) / batches) * 1000 : Number.NaN,
      batches,
      maxLag,
      lagAtLastProduce,
    };
  }
  const cpuPercentBetween = (a: Sample, b: Sample) => {
    const percent: Record<string, number> = {};
    for (const name of Object.keys(b.cpu))
      percent[name] = (((b.cpu[name] as number) - (a.cpu[name] as number)) / (b.t - a.t)) * 100;
    // Another broker process than at the start: its CPU time is not comparable.
    if (raw.restarts.some((r) => r.startsWith("Kafka"))) {
      percent.kafka = Number.NaN;
      percent[brokerCompilerKey] = Number.NaN;
    }
    return percent;
  };
  const cpuPercent = cpuPercentBetween(first, last);
  const workCpuPercent = cpuPercentBetween(first, workEnd);
  const workS = workEnd.t - first.t;
  const machineBusyPercent =
    ((last.machine.busy - first.machine.busy) / (last.machine.total - first.machine.total)) * 100;
  const db = await dbCounts(setup, raw.phase);
  const split = await latencySplit(setup, raw);
  return {
    phase: raw.phase,
    label: raw.label,
    alerts: raw.alerts,
    complete: raw.complete,
    producerAlertsPerS: raw.alerts / Math.max(0.001, (raw.lastProducedMs - raw.firstProducedMs) / 1000),
    e2eAlertsPerS: latencies.length / durationS,
    requestsPerS: raw.requests / durationS,
    requests: raw.requests,
    durationS,
    latencyMs: {
      p50: quantile(latencies, 0.5),
      p95: quantile(latencies, 0.95),
      p99: quantile(latencies, 0.99),
      max: latencies.at(-1) ?? Number.NaN,
    },
    latencySplit: split,
    lostAtSink: lost,
    duplicatesAtSink: duplicates,
    eventTimeMismatches: mismatches,
    db,
    lostRows: raw.alerts - db.pairs,
    duplicateRows: db.rows - db.pairs,
    stages,
    cpuPercent,
    cpuUsPerAlert: cpuUsPerAlert(workCpuPercent, workS, raw.alerts),
    cpuUsPerAlertByProcess: Object.fromEntries(
      [...pipelineProcesses, brokerCompilerKey].map((name) => [
        name,
        cpuUsPerAlert(workCpuPercent, workS, raw.alerts, [name]),
      ]),
    ),
    pgTransactionsPerKiloAlert:
      ((workEnd.pgTransactions - first.pgTransactions - raw.samples.indexOf(workEnd)) / raw.alerts) * 1000,
    sinkCpuUsPerAlert: cpuUsPerAlert(workCpuPercent, workS, raw.alerts, ["sink"]),
    machineCpuUsPerAlert: ((workEnd.machine.busy - first.machine.busy) / raw.alerts) * 1e6,
    machineBusyPercent,
    peakRssMiB: raw.peakRssMiB,
    peakRssPerPhase: raw.peakReset,
    restarts: raw.restarts,
    perSecond,
    lagPerSecond: raw.samples.map((s) => ({
      t: Math.round(s.t * 10) / 10,
      evaluator: s.stages.evaluator?.lag ?? Number.NaN,
      aggregator: s.stages.aggregator?.lag ?? Number.NaN,
      sender: s.stages.sender?.lag ?? Number.NaN,
    })),
  };
}

// ------------------------------------------------------------------------------------- output

const int = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a");
const ms = (value: number) => (Number.isFinite(value) ? `${Math.round(value)}` : "n/a");
const pct = (value: number) => (Number.isFinite(value) ? `${Math.round(value)}%` : "n/a");
const pct1 = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)}%` : "n/a");
const ratio = (ours: number, theirs: number) => {
  const value = ours / theirs;
  return Number.isFinite(value) ? value.toFixed(2) : "n/a";
};
const verdict = (ok: boolean) => (ok ? "met" : "MISSED");

function printResults(
  results: PhaseResult[],
  kcat: KcatCeiling | string,
  pg: PostgresCeiling | string,
  floor: CpuFloor | string,
  idle: IdleCpu | undefined,
): void {
  console.log(
    `\n${table(
      [
        "end to end",
        "alerts",
        "produced/s",
        "e2e alerts/s",
        "requests/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "lost rows",
        "dup rows",
        "lost sink",
        "dup sink",
      ],
      results.map((r) => [
        r.label,
        int(r.alerts),
        int(r.producerAlertsPerS),
        int(r.e2eAlertsPerS),
        int(r.requestsPerS),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p95),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        int(r.lostRows),
        int(r.duplicateRows),
        int(r.lostAtSink),
        int(r.duplicatesAtSink),
      ]),
    )}`,
  );
  for (const r of results) {
    const extra: string[] = [];
    if (r.db.wrongClient > 0) extra.push(`${r.db.wrongClient} rows under the wrong client`);
    if (r.db.notSent > 0) extra.push(`${r.db.notSent} rows not SENT`);
    if (r.db.successDeliveries !== r.db.sent)
      extra.push(`${r.db.successDeliveries} SUCCESS deliveries for ${r.db.sent} SENT rows`);
    if (r.eventTimeMismatches > 0)
      extra.push(`${r.eventTimeMismatches} payload eventTimes differ from the produced ones`);
    console.log(
      `  ${r.label}: db ${int(r.db.rows)} rows, ${int(r.db.sent)} SENT, ${int(r.db.deliveries)} delivery rows (${int(r.db.successDeliveries)} SUCCESS)` +
        `${r.db.groupSends > 0 ? `, ${int(r.db.groupSends)} group messages` : ""}` +
        `${extra.length > 0 ? `; ${extra.join("; ")}` : ""}`,
    );
  }
  for (const r of results) {
    const { toRowMs, rowToSinkMs } = r.latencySplit;
    console.log(
      `  ${r.label}: latency split, event -> row (evaluator, aggregator) p50 ${ms(toRowMs.p50)} / p99 ${ms(toRowMs.p99)} ms, ` +
        `row -> webhook (sender) p50 ${ms(rowToSinkMs.p50)} / p99 ${ms(rowToSinkMs.p99)} ms`,
    );
  }
  const processes = [
    "evaluator",
    "aggregator",
    "sender",
    "rule-updater",
    "rule-service",
    "sink",
    "bench",
    "kafka",
    "postgres",
  ];
  for (const r of results) {
    console.log(
      `\n${table(
        [
          `per stage, ${r.label}`,
          "consumed/s",
          "active s",
          "consumed/active s",
          "produced/s",
          "peak 1 s",
          "batches",
          "mean batch ms",
          "max lag",
          "lag at last produce",
        ],
        consumeStages.map((stage) => {
          const s = r.stages[stage];
          return s
            ? [
                stage,
                int(s.consumedPerS),
                s.activeS.toFixed(0),
                int(s.activePerS),
                int(s.producedPerS),
                int(s.peakConsumedPerS),
                int(s.batches),
                ms(s.meanBatchMs),
                int(s.maxLag),
                int(s.lagAtLastProduce),
              ]
            : [stage, "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"];
        }),
      )}`,
    );
    console.log(
      table(
        ["process", ...processes],
        [
          ["CPU % of a core", ...processes.map((p) => pct(r.cpuPercent[p] ?? Number.NaN))],
          [
            `peak RSS MiB${r.peakRssPerPhase ? "" : " (since start)"}`,
            ...processes.map((p) => int(r.peakRssMiB[p] ?? Number.NaN)),
          ],
        ],
      ),
    );
    console.log(
      `  machine CPU busy ${pct(r.machineBusyPercent)} of 2 cores (all processes, others' included)` +
        (r.restarts.length > 0 ? `; WARNING: ${r.restarts.join(", ")} during this phase` : ""),
    );
  }

  const maxPhase = results.find((r) => r.phase === "m");
  const fixedPhases = results.filter((r) => isFixedPhase(r.phase));
  const rows: string[][] = [];
  /** A ceiling's row: its rate and the max phase's end-to-end rate over it. */
  const e2eRow = (label: string, ceilingPerS: number, versus: string) => [
    label,
    int(ceilingPerS),
    maxPhase ? ratio(maxPhase.e2eAlertsPerS, ceilingPerS) : "n/a",
    `e2e (max) / ${versus}`,
  ];
  /** The stage bound by that ceiling: what it consumed per second in the max phase, over the ceiling. */
  const stageRow = (stage: "evaluator" | "aggregator", ceilingPerS: number, versus: string) => {
    const consumedPerS = maxPhase?.stages[stage]?.consumedPerS;
    if (consumedPerS !== undefined)
      rows.push([
        `  ${stage} consumed/s (max)`,
        int(consumedPerS),
        ratio(consumedPerS, ceilingPerS),
        `${stage} / ${versus}`,
      ]);
  };
  if (typeof kcat === "string") rows.push(["kcat (one Kafka hop)", `failed: ${kcat}`, "", ""]);
  else {
    rows.push(
      e2eRow("kcat produce", kcat.produceRecordsPerS, "kcat produce"),
      e2eRow("kcat consume", kcat.consumeRecordsPerS, "kcat consume"),
      e2eRow("kcat produce+consume (one hop)", kcat.hopRecordsPerS, "one kcat hop"),
    );
    stageRow("evaluator", kcat.hopRecordsPerS, "one kcat hop");
  }
  if (typeof pg === "string") rows.push(["postgres dedupe insert", `failed: ${pg}`, "", ""]);
  else {
    rows.push(
      e2eRow(
        `postgres dedupe insert (${pg.batchRows}/stmt, p50 ${ms(pg.statementMsP50)} ms, p99 ${ms(pg.statementMsP99)} ms)`,
        pg.rowsPerS,
        "postgres insert",
      ),
    );
    stageRow("aggregator", pg.rowsPerS, "postgres insert");
  }
  console.log(`\n${table(["ceiling on this machine", "records/s", "ratio", "ours vs"], rows)}`);

  /** The share of the machine the floor alone keeps busy at `alertsPerS`. */
  const floorBusy = (alertsPerS: number) =>
    typeof floor === "string" ? Number.NaN : (alertsPerS * floor.cpuUsPerAlert) / (floor.cores * 1e6);
  if (typeof floor === "string") console.log(`\nCPU floor per alert: failed: ${floor}`);
  else {
    console.log(
      `\n${table(
        ["CPU floor per alert (each part alone, machine CPU net of idle)", "us/alert"],
        [
          ...floor.parts.map((part) => [part.label, int(part.cpuUsPerAlert)]),
          [
            `total: at most ${int(floor.maxAlertsPerS)} alerts/s on ${floor.cores} cores with stages costing nothing`,
            int(floor.cpuUsPerAlert),
          ],
        ],
      )}`,
    );
  }

  console.log("\ntargets (2 cores, everything co-located):");
  if (maxPhase)
    console.log(
      `  >= ${int(e2eTarget)} alerts/s end to end: ${int(maxPhase.e2eAlertsPerS)} -> ${verdict(maxPhase.e2eAlertsPerS >= e2eTarget && maxPhase.complete)}` +
        (typeof floor === "string"
          ? ""
          : ` (the CPU floor allows at most ${int(floor.maxAlertsPerS)}/s here)`),
    );
  for (const fixedPhase of fixedPhases)
    console.log(
      `  p99 <= ${p99TargetMs} ms at ${fixedPhase.label}: ${ms(fixedPhase.latencyMs.p99)} ms -> ${verdict(fixedPhase.latencyMs.p99 <= p99TargetMs && fixedPhase.complete)}` +
        (typeof floor === "string"
          ? ""
          : ` (at this rate the CPU floor alone keeps the machine ${pct(floorBusy(fixedPhase.producerAlertsPerS) * 100)} busy)`),
    );
  printCpuTargets(results, floor, idle);
  for (const r of results) {
    const clean = r.lostRows === 0 && r.duplicateRows === 0 && r.lostAtSink === 0 && r.duplicatesAtSink === 0;
    console.log(`  lost = duplicates = 0 (${r.label}): ${verdict(clean)}`);
  }
  if (maxPhase) console.log(`  bottleneck (max): ${diagnose(maxPhase)}`);
  for (const fixedPhase of fixedPhases)
    if (fixedPhase.latencyMs.p99 > p99TargetMs)
      console.log(`  bottleneck (${fixedPhase.label}): ${diagnose(fixedPhase)}`);
}

const isFixedPhase = (phase: string) => /^f\d*$/.test(phase);

/**
 * CPU per alert per phase (stages, broker, Postgres; the sink apart), the idle pipeline, and their
 * targets: each fixed rate's CPU per alert against max's, max's rate against the floor's.
 */
/** Target of issue 17: grouped max alerts/s at least this many times the ungrouped max of the same run. */
const groupedSpeedupMin = 3;

/** What a grouped alert costs at least, from this run's figures (groupedFloorUs). */
interface GroupedFloorParts {
  /** One Kafka hop at kcat's cost, per alert. */
  kafkaHopUs: number;
  /** The aggregator's dedupe insert alone, per alert. */
  dedupeInsertUs: number;
}

/**
 * Grouping saves the sender's per-alert work (a POST, its statements) and the notifications.ready
 * hop, and nothing before them: every alert still crosses the evaluator and the aggregator, two Kafka
 * hops, and gets its own durable row. So a grouped alert costs at least the evaluator's and the
 * aggregator's CPU per alert in the ungrouped max phase, two hops at kcat's cost and the dedupe
 * insert alone; the most grouping can speed up a CPU-bound max rate is about the ungrouped CPU per
 * alert over that floor. About: a grouped aggregator produces nothing but opens groups (it measured
 * more than ungrouped in every run so far), and the insert's figure counts its client's CPU, as the
 * aggregator's does, a few us per alert.
 */
function groupedFloorUs(ungrouped: PhaseResult, parts: GroupedFloorParts): number {
  const { evaluator, aggregator } = ungrouped.cpuUsPerAlertByProcess;
  return (evaluator ?? Number.NaN) + (aggregator ?? Number.NaN) + 2 * parts.kafkaHopUs + parts.dedupeInsertUs;
}

function groupingSummary(results: PhaseResult[], flags: Flags, floorParts: GroupedFloorParts) {
  const ungrouped = results.find((r) => r.phase === "m");
  const grouped = results.find((r) => r.phase === "g");
  if (flags.groupBy === undefined || ungrouped === undefined || grouped === undefined) return undefined;
  const speedup = grouped.e2eAlertsPerS / ungrouped.e2eAlertsPerS;
  const floorUs = groupedFloorUs(ungrouped, floorParts);
  const speedupBound = ungrouped.cpuUsPerAlert / floorUs;
  const summary = {
    groupBy: flags.groupBy,
    groupIntervalMs: flags.groupIntervalMs,
    groups: flags.clients,
    ungrouped: { alertsPerS: ungrouped.e2eAlertsPerS, requestsPerS: ungrouped.requestsPerS },
    grouped: {
      alertsPerS: grouped.e2eAlertsPerS,
      requestsPerS: grouped.requestsPerS,
      groupMessages: grouped.db.groupSends,
    },
    speedup,
    speedupBound,
    speedupMin: groupedSpeedupMin,
    met: speedup >= groupedSpeedupMin && grouped.complete && grouped.lostAtSink === 0,
  };
  console.log(
    `\ngrouping by ${flags.groupBy} (${int(flags.clients)} groups, group_interval ${int(flags.groupIntervalMs)} ms): ` +
      `ungrouped max ${int(ungrouped.e2eAlertsPerS)} alerts/s with ${int(ungrouped.requestsPerS)} requests/s; ` +
      `grouped max ${int(grouped.e2eAlertsPerS)} alerts/s with ${int(grouped.requestsPerS)} requests/s ` +
      `(${int(grouped.db.groupSends)} group messages); ${speedup.toFixed(2)}x the ungrouped rate ` +
      `(target >= ${groupedSpeedupMin}x: ${verdict(summary.met)})`,
  );
  console.log(
    `  about the most grouping can give here: ${speedupBound.toFixed(2)}x: ungrouped ${int(ungrouped.cpuUsPerAlert)} us/alert ` +
      `over what a grouped alert costs at least, ${int(floorUs)} us (grouped: ${int(grouped.cpuUsPerAlert)}): ` +
      `evaluator and aggregator as ungrouped, two Kafka hops at kcat's cost, the dedupe insert alone`,
  );
  return summary;
}

/** CPU per alert less what the broker spent compiling: its cost once warm, as a long-running broker is. */
function withoutBrokerCompiler(r: PhaseResult): number {
  return r.cpuUsPerAlert - (r.cpuUsPerAlertByProcess[brokerCompilerKey] ?? Number.NaN);
}

function printCpuTargets(results: PhaseResult[], floor: CpuFloor | string, idle: IdleCpu | undefined): void {
  const maxPhase = results.find((r) => r.phase === "m");
  console.log(
    `\n${table(
      [
        "CPU per alert",
        "us/alert (stages, broker, postgres)",
        "x max",
        "sink us/alert (apart)",
        "machine us/alert (all, others' too)",
        "x max",
      ],
      results.map((r) => [
        r.label,
        int(r.cpuUsPerAlert),
        maxPhase ? ratio(r.cpuUsPerAlert, maxPhase.cpuUsPerAlert) : "n/a",
        int(r.sinkCpuUsPerAlert),
        int(r.machineCpuUsPerAlert),
        maxPhase ? ratio(r.machineCpuUsPerAlert, maxPhase.machineCpuUsPerAlert) : "n/a",
      ]),
    )}`,
  );
  console.log(
    `\n${table(
      ["CPU us per alert, by process", ...pipelineProcesses, "of kafka: JIT compiler"],
      results.map((r) => [
        r.label,
        ...[...pipelineProcesses, brokerCompilerKey].map((name) =>
          int(r.cpuUsPerAlertByProcess[name] ?? Number.NaN),
        ),
      ]),
    )}`,
  );
  console.log(
    `\n${table(
      [
        "fixed costs per 1000 alerts",
        "batches",
        "Kafka produce requests",
        "Kafka fetch requests",
        "other Kafka requests",
        "thread waits",
        "postgres transactions (all stages)",
      ],
      results.flatMap((r) =>
        consumeStages.map((stage) => {
          const s = r.stages[stage];
          const requests = s?.kafkaRequestsPerKiloAlert;
          return [
            `${r.label}: ${stage}`,
            int(((s?.batches ?? Number.NaN) / r.alerts) * 1000),
            int(requests?.produce ?? Number.NaN),
            int(requests?.fetch ?? Number.NaN),
            int(requests?.other ?? Number.NaN),
            int(s?.waitsPerKiloAlert ?? Number.NaN),
            stage === "evaluator" ? int(r.pgTransactionsPerKiloAlert) : "",
          ];
        }),
      ),
    )}`,
  );
  if (idle) {
    const names = [...pipelineProcesses, "sink", "bench"];
    console.log(
      `${table(
        [`idle, ${idle.seconds} s without alerts`, ...names],
        [["CPU % of a core", ...names.map((name) => pct1(idle.percent[name] ?? Number.NaN))]],
      )}\n  the broker before the stages started: ${pct1(idle.brokerBeforePercent)} of a core (a shared broker: ` +
        `others' share and its own idle); with the stages idle ${pct1((idle.percent.kafka ?? Number.NaN) - idle.brokerBeforePercent)} more`,
    );
  }
  for (const r of results.filter((r) => isFixedPhase(r.phase)))
    if (maxPhase)
      console.log(
        `  CPU per alert at ${r.label} <= ${everydayCpuRatioMax} x max's: ${ratio(r.cpuUsPerAlert, maxPhase.cpuUsPerAlert)} x -> ` +
          `${verdict(r.cpuUsPerAlert <= everydayCpuRatioMax * maxPhase.cpuUsPerAlert)} ` +
          `(${ratio(withoutBrokerCompiler(r), withoutBrokerCompiler(maxPhase))} x without the broker's JIT compiler)`,
      );
  if (maxPhase && typeof floor !== "string")
    console.log(
      `  max alerts/s >= ${floorRateFractionMin} x the CPU floor's rate: ${int(maxPhase.e2eAlertsPerS)} / ${int(floor.maxAlertsPerS)} = ` +
        `${ratio(maxPhase.e2eAlertsPerS, floor.maxAlertsPerS)} -> ${verdict(maxPhase.e2eAlertsPerS >= floorRateFractionMin * floor.maxAlertsPerS)}`,
    );
  if (idle)
    for (const { label, percent, targetPercent, met } of idleVerdicts(idle)) {
      // Right after the max phase the broker is still compiling what that phase ran hot.
      const compiling =
        label === "broker"
          ? ` (${pct1(percent - (idle.percent[brokerCompilerKey] ?? Number.NaN))} without its JIT compiler)`
          : "";
      console.log(
        `  idle ${label} <= ${targetPercent}% of a core: ${pct1(percent)} -> ${verdict(met)}${compiling}`,
      );
    }
}

/** The first stage, in pipeline order, that fell behind the most; with its CPU. */
function diagnose(r: PhaseResult): string {
  const behind = consumeStages
    .map((stage) => ({ stage, summary: r.stages[stage] }))
    .filter((s): s is { stage: ConsumeStage; summary: StageSummary } => s.summary !== undefined);
  if (behind.length === 0) return "no stage metrics";
  const worst = behind.reduce((a, b) => (b.summary.maxLag > a.summary.maxLag ? b : a));
  const rates = behind.map((s) => `${s.stage} ${int(s.summary.peakConsumedPerS)}/s peak`).join(", ");
  return (
    `${worst.stage} (max lag ${int(worst.summary.maxLag)}, CPU ${pct(r.cpuPercent[worst.stage] ?? Number.NaN)} of a core; ` +
    `machine ${pct(r.machineBusyPercent)} busy; ${rates})`
  );
}

function chart(results: PhaseResult[], title: string): string {
  const rows: Panel[][] = [
    results.map((r) => ({
      title: `${r.label}: deliveries per second`,
      yLabel: "alerts delivered / s",
      series: [
        {
          label: "delivered / s",
          color: "#1f77b4",
          points: r.perSecond.map((p) => [p.t, p.delivered] as [number, number]),
        },
      ],
      target: r.phase === "m" ? { y: e2eTarget, label: `target ${int(e2eTarget)}/s` } : undefined,
    })),
    results.map((r) => ({
      title: `${r.label}: latency of the alerts delivered in each second`,
      yLabel: "ms from event time",
      series: [
        {
          label: "p99",
          color: "#d62728",
          points: r.perSecond
            .filter((p) => Number.isFinite(p.p99Ms))
            .map((p) => [p.t, p.p99Ms] as [number, number]),
        },
        {
          label: "p50",
          color: "#2ca02c",
          points: r.perSecond
            .filter((p) => Number.isFinite(p.p50Ms))
            .map((p) => [p.t, p.p50Ms] as [number, number]),
        },
      ],
      target: isFixedPhase(r.phase) ? { y: p99TargetMs, label: `target p99 ${p99TargetMs} ms` } : undefined,
    })),
  ];
  return chartSvg(title, rows);
}

// ----------------------------------------------------------------------------------- CPU floor

interface FloorParts {
  /** The machine over 3 s with the stages idle: subtracted from every part. */
  idle: MachineCpu;
  statements: SenderStatementsCeiling;
  webhook: PostCeiling;
}

/**
 * The parts of the CPU floor that the Kafka and dedupe ceilings do not cover: the sender's
 * statements over `count` fresh rows of four clients of the run's own, and `count` webhook POSTs of
 * the sender's payload to the sink through the sender's client at its per-endpoint concurrency.
 */
async function measureFloorParts(
  setup: Setup,
  settings: Record<StageName, Record<string, string>>,
  count: number,
): Promise<FloorParts | string> {
  const { pipeline, sink, run } = setup;
  try {
    const idleMeter = startCpuMeter();
    await Bun.sleep(3000);
    const idle = machineCpu(idleMeter());
    const clients = newClients(4);
    await insertClients(
      pipeline.sql,
      `bench-pipeline-${run}-floor-`,
      (id) => sink.url(`/hook/${id}`),
      clients,
    );
    const statements = await senderStatementsCeiling(pipeline.sql, clients, {
      alertPrefix: `${run}-floor`,
      count,
      batchSize: Number(settings.sender.BATCH_SIZE_MAX),
      dispatchesInFlight: Number(settings.sender.DISPATCHES_IN_FLIGHT_MAX ?? 4),
    });
    const body = JSON.stringify(
      webhookPayload({
        id: "1234567",
        clientId: clients.clientIds[0] as string,
        alertId: `${run}-floor-123456`,
        severity: "HIGH",
        source: pipeline.source,
        name: "a1",
        context: { host: "bench-1" },
        ruleIds: [clients.ruleIds[0] as string],
        eventTime: new Date(),
      }),
    );
    const webhook = await webhookCeiling(sink.url("/hook/floor"), {
      count,
      concurrency: Number(settings.sender.ENDPOINT_CONCURRENCY_MAX),
      body,
    });
    return { idle, statements, webhook };
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

// ---------------------------------------------------------------------------------------- main

/**
 * Deletes this run's rows only: its clients are found by name (`bench-pipeline-<run>-<i>`), so a run
 * that failed halfway through creating them is cleaned up too.
 */
async function cleanUp(setup: Partial<Setup>, scratchTable: string): Promise<void> {
  const sql = setup.pipeline?.sql;
  if (!sql) return;
  try {
    await whilePostgresIsBack("cleanup", async () => {
      await sql.unsafe(`DROP TABLE IF EXISTS ${scratchTable}`);
      const mine = await sql.unsafe<{ id: string }[]>("SELECT id FROM clients WHERE name LIKE $1", [
        `bench-pipeline-${setup.run}-%`,
      ] as never[]);
      const ids = mine.map((row) => row.id);
      if (ids.length === 0) return;
      await sql.unsafe(
        "DELETE FROM deliveries WHERE notification_id IN (SELECT id FROM notifications WHERE client_id = ANY($1::uuid[]))",
        [ids] as never[],
      );
      await sql.unsafe("DELETE FROM notifications WHERE client_id = ANY($1::uuid[])", [ids] as never[]);
      // Group messages go with their deliveries (ON DELETE CASCADE), then the groups.
      await sql.unsafe("DELETE FROM group_sends WHERE client_id = ANY($1::uuid[])", [ids] as never[]);
      await sql.unsafe("DELETE FROM notification_groups WHERE client_id = ANY($1::uuid[])", [ids] as never[]);
      await sql.unsafe("DELETE FROM endpoints WHERE client_id = ANY($1::uuid[])", [ids] as never[]);
      await sql.unsafe("DELETE FROM rules WHERE client_id = ANY($1::uuid[])", [ids] as never[]);
      await sql.unsafe("DELETE FROM clients WHERE id = ANY($1::uuid[])", [ids] as never[]);
    });
  } catch (error) {
    console.log(`cleanup failed: ${error instanceof Error ? error.message : error}`);
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const settings = stageSettings(flags.env);
  const run = `pb${Date.now().toString(36)}${process.pid.toString(36)}`;
  const scratchTable = `bench_pipeline_${run}`;
  const uptime = (await Bun.$`uptime`.quiet().nothrow().text()).trim() || `load ${loadavg().join(", ")}`;
  console.log(
    `pipeline bench ${run}: ${int(flags.alerts)} alerts per phase, ${int(flags.clients)} clients (one webhook each), ` +
      `fixed rate ${flags.rates.map((rate) => `${int(rate)}/s`).join(", ")} then max rate; ${flags.partitions} partitions per topic; broker ${infraUrls.kafkaBrokers}`,
  );
  console.log(`uptime at start: ${uptime}`);
  console.log("stage settings:");
  for (const stage of consumeStages)
    console.log(
      `  ${stage.padEnd(10)} ${Object.entries(settings[stage])
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );

  const setup: Partial<Setup> = { run };
  let sink: Sink | undefined;
  let admin: Admin | undefined;
  try {
    // The broker is shared: what it burns before our stages exist is others' share of its idle CPU.
    const brokerBeforeS = Math.min(flags.idleS, 10);
    const brokerBefore =
      brokerBeforeS > 0
        ? await cpuPercentOver(
            () => ({ kafka: cpuSeconds(brokerPid(repoRoot) ?? 0) ?? Number.NaN }),
            brokerBeforeS,
          )
        : {};
    sink = await startSink();
    setup.sink = sink;
    const pipeline = await startPipeline({
      run,
      partitions: flags.partitions,
      topicConfig: { "retention.ms": String(30 * 60 * 1000) },
      stageEnv: settings,
      // The rule-updater's first snapshot reads every rule in the shared database: seconds when
      // other runs hold many.
      startTimeoutMs: 90_000,
    });
    setup.pipeline = pipeline;
    const pids = new Map<string, number>();
    for (const stage of pipeline.stages) pids.set(stage.name, stage.process.pid);
    pids.set("sink", sink.process.pid);
    pids.set("bench", process.pid);
    const broker = brokerPid(repoRoot);
    if (broker !== undefined) pids.set("kafka", broker);
    setup.pids = pids;

    const createStart = performance.now();
    const { clientIds, ruleIds } = await createClients(pipeline, sink, flags.clients, run);
    setup.clientIds = clientIds;
    setup.ruleIds = ruleIds;
    const encoder = new AlertEncoder(pipeline.source, clientIds);
    checkEncoding(encoder);
    setup.encoder = encoder;
    console.log(
      `created ${flags.clients} clients, rules and endpoints in ${((performance.now() - createStart) / 1000).toFixed(1)} s`,
    );
    const warmS = await warmUp(setup as Setup, flags.clients);
    console.log(`warm-up: every client got its webhook after ${warmS.toFixed(1)} s`);

    const fixed = (rate: number) => `fixed ${int(rate)}/s`;
    const firstRate = flags.rates[0] as number;
    const plans: PhasePlan[] = [
      // Not counted: the stages' code is still cold (JIT tiers) after the one-alert-per-client warm-up,
      // and a backlog built in those seconds would be measured as latency for many seconds after.
      ...(flags.warmUpAlerts > 0
        ? [{ phase: "warm", label: `warm-up ${fixed(firstRate)}`, rate: firstRate, n: flags.warmUpAlerts }]
        : []),
      ...flags.rates.map((rate, i) => ({
        phase: i === 0 ? "f" : `f${i + 1}`,
        label: fixed(rate),
        rate,
        n: flags.alerts,
      })),
      { phase: "m", label: "max", rate: undefined, n: flags.alerts },
    ];
    const raws: PhaseRaw[] = [];
    for (const plan of plans) raws.push(await runPhase(setup as Setup, flags, plan));
    if (flags.groupBy !== undefined) {
      setup.encoder = await groupRules(setup as Setup, flags.groupBy, flags.groupIntervalMs);
      const groupWarmS = await warmUp(setup as Setup, flags.clients, "gw");
      console.log(
        `grouped by ${flags.groupBy}: every client got a group message after ${groupWarmS.toFixed(1)} s`,
      );
      raws.push(
        await runPhase(setup as Setup, flags, {
          phase: "g",
          label: `max grouped by ${flags.groupBy}`,
          rate: undefined,
          n: flags.alerts,
        }),
      );
    }
    const results: PhaseResult[] = [];
    for (const raw of raws) results.push(await analyse(setup as Setup, raw));

    let idle: IdleCpu | undefined;
    if (flags.idleS > 0) {
      console.log(`idle: ${flags.idleS} s without alerts`);
      await Bun.sleep(3000); // the last commits and lingering sends of the max phase
      idle = {
        seconds: flags.idleS,
        percent: await cpuPercentOver(() => sampleCpu(pids), flags.idleS),
        brokerBeforePercent: brokerBefore.kafka ?? Number.NaN,
      };
    }

    // The limits of this machine, measured after the pipeline phases (the stages idle meanwhile).
    admin = new Admin(infraUrls.kafkaBrokers, {}, createLogger("kafka.admin"));
    const valueBytes = encoder.encode(alertId(run, "m", flags.alerts - 1), 0, Date.now()).length;
    console.log(
      `ceilings: kcat with ${int(flags.alerts)} records of ${valueBytes} bytes, postgres with ${int(flags.alerts)} rows`,
    );
    let kcat: KcatCeiling | string;
    try {
      kcat = await kcatCeiling({
        brokers: infraUrls.kafkaBrokers,
        admin,
        topic: `${run}.kcat`,
        partitions: flags.partitions,
        records: flags.alerts,
        valueBytes,
      });
    } catch (error) {
      kcat = error instanceof Error ? error.message : String(error);
    }
    let pg: PostgresCeiling | string;
    try {
      pg = await postgresCeiling({
        sql: pipeline.sql,
        table: scratchTable,
        rows: flags.alerts,
        batchRows: Number(settings.aggregator.BATCH_SIZE_MAX),
        clientIds,
        ruleIds,
        source: pipeline.source,
      });
    } catch (error) {
      pg = error instanceof Error ? error.message : String(error);
    }
    const floorParts = await measureFloorParts(setup as Setup, settings, flags.alerts);
    const senderStatementsUsPerAlert =
      typeof floorParts === "string"
        ? Number.NaN
        : netCpuUs(machineCpu(floorParts.statements.cpu), floorParts.idle, flags.alerts);
    const floor =
      typeof kcat === "string" || typeof pg === "string" || typeof floorParts === "string"
        ? [kcat, pg, floorParts].filter((part) => typeof part === "string").join("; ")
        : cpuFloor(
            [
              {
                label: "3 Kafka hops (alerts.new, alerts.matched, notifications.ready) at kcat's cost",
                cpuUsPerAlert: 3 * netCpuUs(kcat.machineCpu, floorParts.idle, flags.alerts),
              },
              {
                label: "the aggregator's dedupe insert (the ceiling above)",
                cpuUsPerAlert: netCpuUs(pg.machineCpu, floorParts.idle, flags.alerts),
              },
              {
                label: `the sender's statements alone (claim with endpoints, attempt + status; ${int(floorParts.statements.notificationsPerS)}/s)`,
                cpuUsPerAlert: senderStatementsUsPerAlert,
              },
              {
                label: `one webhook POST: Http1Client (the sender's) -> the sink (${int(floorParts.webhook.requestsPerS)}/s)`,
                cpuUsPerAlert: netCpuUs(machineCpu(floorParts.webhook.cpu), floorParts.idle, flags.alerts),
              },
            ],
            availableParallelism(),
          );
    printResults(results, kcat, pg, floor, idle);
    const grouping = groupingSummary(results, flags, {
      kafkaHopUs:
        typeof kcat === "string" || typeof floorParts === "string"
          ? Number.NaN
          : netCpuUs(kcat.machineCpu, floorParts.idle, flags.alerts),
      dedupeInsertUs:
        typeof pg === "string" || typeof floorParts === "string"
          ? Number.NaN
          : netCpuUs(pg.machineCpu, floorParts.idle, flags.alerts),
    });

    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
    const resultsDir = join(repoRoot, "results");
    mkdirSync(resultsDir, { recursive: true });
    const jsonPath = join(resultsDir, `pipeline-${stamp}.json`);
    const svgPath = join(resultsDir, `pipeline-${stamp}.svg`);
    writeFileSync(
      jsonPath,
      `${JSON.stringify(
        {
          run,
          startedAt: new Date().toISOString(),
          uptimeAtStart: uptime,
          uptimeAtEnd: (await Bun.$`uptime`.quiet().nothrow().text()).trim(),
          flags: { ...flags, env: Object.fromEntries(flags.env) },
          stageSettings: settings,
          targets: { e2eAlertsPerS: e2eTarget, p99Ms: p99TargetMs },
          phases: results,
          ceilings: { kcat, postgres: pg, floorParts },
          cpuFloor: floor,
          idle,
          grouping,
        },
        null,
        2,
      )}\n`,
    );
    writeFileSync(
      svgPath,
      chart(
        results,
        `pipeline bench ${run}: ${int(flags.alerts)} alerts per phase, ${flags.clients} clients`,
      ),
    );
    const logPath = join(resultsDir, `pipeline-${stamp}.log`);
    writeFileSync(
      logPath,
      pipeline.stages.map((stage) => `== ${stage.name}\n${stage.output.slice(-200).join("\n")}\n`).join(""),
    );
    console.log(`\nwrote ${jsonPath}\nwrote ${svgPath}\nwrote ${logPath} (the stages' last 200 log lines)`);
    console.log(`uptime at end: ${(await Bun.$`uptime`.quiet().nothrow().text()).trim()}`);
  } finally {
    admin?.close();
    await cleanUp(setup, scratchTable);
    if (setup.pipeline) {
      const codes = await setup.pipeline.stop();
      if (codes.some((code) => code !== 0)) console.log(`stage exit codes: ${codes.join(", ")}`);
    }
    await sink?.stop();
  }
}

await main();
