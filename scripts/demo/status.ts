/**
 * The live status view: every stage's /metrics and two Postgres queries, sampled every second and
 * drawn as the terminal's footer. Without a terminal it prints one summary line every 5 s instead.
 *
 * Rates are deltas of the stages' counters between two samples; lag is consumer_lag summed over
 * partitions; notification counts and the last deliveries cover the demo clients only, since the
 * database is shared with the tests.
 */
import { connectPostgres } from "../../src/adapters/postgres.ts";
import type { DemoClient } from "./seed.ts";
import type { Sink } from "./sinks.ts";
import type { LiveTerminal } from "./terminal.ts";

export interface WatchedStage {
  name: string;
  port: number;
}

interface StageSample {
  /** Metric name -> sum over all its label sets; undefined when /metrics did not answer. */
  metrics: Map<string, number> | undefined;
  atMs: number;
}

interface Snapshot {
  stages: { name: string; now: StageSample; before: StageSample | undefined }[];
  notifications: { status: string; n: number }[];
  deliveries: { attempted_at: Date; channel: string; outcome: string; client: string; alert: string }[];
}

const liveIntervalMs = 1000;
const plainIntervalMs = 5000;
const stopTimeoutMs = 3000;
const statuses = ["RECEIVED", "SENDING", "RETRY", "SENT", "FAILED"];

export function startStatusView(
  terminal: LiveTerminal,
  stages: WatchedStage[],
  clients: DemoClient[],
  sinks: Sink[],
): { name: string; stop(): Promise<void> } {
  const sql = connectPostgres({ connectionsMax: 2 });
  const clientIds = clients.map((c) => c.id);
  let previous = new Map<string, StageSample>();
  let inFlight: Promise<void> | undefined;

  const sample = async (): Promise<Snapshot> => {
    const now = await Promise.all(
      stages.map(async (stage) => ({ name: stage.name, sample: await scrape(stage.port) })),
    );
    const notifications = await sql<{ status: string; n: number }[]>`
      SELECT status, count(*)::int AS n FROM notifications
      WHERE client_id IN ${sql(clientIds)} AND created_at > now() - interval '10 minutes'
      GROUP BY status`;
    const deliveries = await sql<Snapshot["deliveries"]>`
      SELECT d.attempted_at, d.channel, d.outcome, c.name AS client, n.name AS alert
      FROM deliveries d
      JOIN notifications n ON n.id = d.notification_id
      JOIN clients c ON c.id = n.client_id
      WHERE n.client_id IN ${sql(clientIds)}
      ORDER BY d.id DESC LIMIT 5`;
    const snapshot: Snapshot = {
      stages: now.map(({ name, sample }) => ({ name, now: sample, before: previous.get(name) })),
      notifications,
      deliveries,
    };
    previous = new Map(now.map(({ name, sample }) => [name, sample]));
    return snapshot;
  };

  const draw = async () => {
    try {
      const snapshot = await sample();
      if (terminal.interactive) terminal.footer(frame(snapshot, sinks));
      else terminal.line(summaryLine(snapshot, sinks));
    } catch (error) {
      terminal.line(`status: sampling failed (${error instanceof Error ? error.message : String(error)})`);
    }
  };
  const timer = setInterval(
    () => {
      if (inFlight) return; // a slow sample is skipped, not queued
      inFlight = draw().finally(() => {
        inFlight = undefined;
      });
    },
    terminal.interactive ? liveIntervalMs : plainIntervalMs,
  );

  return {
    name: "status-view",
    async stop() {
      clearInterval(timer);
      // Let a sample in flight finish (within a bound) before its connection pool closes.
      await Promise.race([inFlight, Bun.sleep(stopTimeoutMs)]);
      terminal.release();
      await sql.end({ timeout: 2 });
    },
  };
}

/** Sums each metric over its label sets, from Prometheus' text format. */
async function scrape(port: number): Promise<StageSample> {
  const atMs = performance.now();
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(800) });
    const metrics = new Map<string, number>();
    for (const line of (await response.text()).split("\n")) {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (\S+)$/.exec(line);
      if (match) metrics.set(match[1] as string, (metrics.get(match[1] as string) ?? 0) + Number(match[2]));
    }
    return { metrics, atMs };
  } catch {
    return { metrics: undefined, atMs };
  }
}

function rate(stage: Snapshot["stages"][number], metric: string): string {
  const now = stage.now.metrics?.get(metric);
  const before = stage.before?.metrics?.get(metric) ?? 0; // a counter appears with its first record
  if (now === undefined || stage.before === undefined) return "-";
  return (((now - before) * 1000) / (stage.now.atMs - stage.before.atMs)).toFixed(1);
}

function lag(stage: Snapshot["stages"][number]): string {
  const value = stage.now.metrics?.get("consumer_lag");
  return value === undefined ? "-" : String(value);
}

function rulesVersion(snapshot: Snapshot): string {
  const evaluator = snapshot.stages.find((s) => s.name === "evaluator");
  return String(evaluator?.now.metrics?.get("rules_version_applied") ?? "?");
}

function notificationCounts(snapshot: Snapshot): string {
  const count = (status: string) => snapshot.notifications.find((r) => r.status === status)?.n ?? 0;
  return statuses.map((status) => `${status} ${count(status)}`).join("  ");
}

function sinkCounts(sinks: Sink[]): string {
  return sinks.map((sink) => `${sink.name} ${sink.received()}`).join("  ");
}

const time = (date: Date) => date.toISOString().slice(11, 23);

function frame(snapshot: Snapshot, sinks: Sink[]): string[] {
  const rule = "─".repeat(78);
  const rows = snapshot.stages.map((stage) =>
    stage.now.metrics === undefined
      ? `  ${stage.name.padEnd(16)}${"down".padStart(10)}`
      : `  ${stage.name.padEnd(16)}${rate(stage, "records_consumed_total").padStart(10)}` +
        `${rate(stage, "records_produced_total").padStart(12)}${lag(stage).padStart(10)}`,
  );
  const deliveries = snapshot.deliveries.map(
    (d) =>
      `  ${time(d.attempted_at)}  ${d.channel.padEnd(8)} ${d.outcome.padEnd(10)} ${d.client.padEnd(8)} ${d.alert}`,
  );
  return [
    rule,
    `alerting demo   ${new Date().toISOString().slice(11, 19)} UTC   rules version in force: ${rulesVersion(snapshot)}   Ctrl-C stops it all`,
    `  ${"stage".padEnd(16)}${"consumed/s".padStart(10)}${"produced/s".padStart(12)}${"lag".padStart(10)}`,
    ...rows,
    `notifications, demo clients, last 10 min:  ${notificationCounts(snapshot)}`,
    `received by the sinks:  ${sinkCounts(sinks)}`,
    "last deliveries:",
    ...(deliveries.length > 0 ? deliveries : ["  none yet"]),
    rule,
  ];
}

function summaryLine(snapshot: Snapshot, sinks: Sink[]): string {
  const stages = snapshot.stages.map((stage) =>
    stage.now.metrics === undefined
      ? `${stage.name} down`
      : `${stage.name} in ${rate(stage, "records_consumed_total")}/s ` +
        `out ${rate(stage, "records_produced_total")}/s lag ${lag(stage)}`,
  );
  return [
    `status ${new Date().toISOString().slice(11, 19)}`,
    `rules v${rulesVersion(snapshot)}`,
    stages.join(", "),
    `notifications ${notificationCounts(snapshot)}`,
    `sinks ${sinkCounts(sinks)}`,
  ].join(" | ");
}
