/**
 * Shared pieces of the pipeline benches (snapshot, evaluator, aggregator, sender; bench/kafka.ts
 * takes a few): run ids, the machine load, result files and table cells, topics, preloading records,
 * watching a topic fill, stage processes, running commands.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { type StageName, startStage, stopStage } from "../../harness/stages.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import { Admin, type ProduceRecord, Producer } from "../../src/kafka/index.ts";
import { infraUrls } from "../../src/runtime/env.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";

export { table } from "../match.ts";

export const brokers = infraUrls.kafkaBrokers;
/** Errors only: warnings would interleave with the tables. */
export const quietLogger = createLogger("bench", 40);
export const partitionCount = 6;
/** Each run leaves its topics behind; the broker drops their records after this. */
export const topicRetentionMs = 10 * 60 * 1000;
const repoRoot = new URL("../..", import.meta.url).pathname;

export function newRunId(): string {
  return `${Date.now().toString(36)}${process.pid.toString(36)}`;
}

export function loadText(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(", ");
}

export const fmt = (value: number, digits = 0) =>
  value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "n/a" : ok ? "met" : "MISSED";
}

/** A table's target cell, e.g. `>= 0.8 x kcat: met`. */
export function targetCell(ratio: number | undefined, target: number, versus: string): string {
  return `>= ${target} x ${versus}: ${verdict(ratio === undefined ? undefined : ratio >= target)}`;
}

/** A table row: the figure, ours, theirs, ours/theirs and whether that meets `target`. */
export function ratioRow(
  figure: string,
  ours: number,
  theirs: number,
  target: number,
  versus: string,
): string[] {
  const ratio = ours / theirs;
  return [figure, fmt(ours), fmt(theirs), fmt(ratio, 2), targetCell(ratio, target, versus)];
}

/** Writes results/<bench>-<timestamp>.json and returns its path. */
export function writeResults(bench: string, data: Record<string, unknown>): string {
  const dir = join(repoRoot, "results");
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\..*/, "");
  const path = join(dir, `${bench}-${stamp}.json`);
  writeFileSync(
    path,
    `${JSON.stringify(data, (_, value) => (typeof value === "bigint" ? String(value) : value), 2)}\n`,
  );
  return path;
}

/** Ends a bench's output: the load average now, then its results file (with that load) and its path. */
export function finish(bench: string, data: Record<string, unknown>): void {
  console.log(`load average at the end: ${loadText()}`);
  const path = writeResults(bench, { ...data, loadAverage: loadText() });
  console.log(`results: ${path}`);
}

/** Creates 6-partition topics (plus each one's dead-letter topic) with a short retention. */
export async function createTopics(admin: Admin, names: readonly string[]): Promise<void> {
  const config = { "retention.ms": String(topicRetentionMs) };
  await admin.createTopics(
    names.flatMap((name) => [
      { name, partitions: partitionCount, config },
      { name: deadLetterTopic(name), partitions: 1, config },
    ]),
  );
}

/** Produces every record, up to 20 batches of 10k in flight, until all are acknowledged. */
export async function preload(records: readonly ProduceRecord[]): Promise<number> {
  const startMs = performance.now();
  const producer = new Producer({ brokers, logger: quietLogger });
  const inFlight: Promise<void>[] = [];
  const batch = 10_000;
  for (let first = 0; first < records.length; first += batch) {
    inFlight.push(producer.send(records.slice(first, first + batch)));
    if (inFlight.length >= 20) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await producer.close();
  return performance.now() - startMs;
}

export interface FillWatch {
  /** When the first record appeared, and how many there were at that poll. */
  firstMs: number;
  countAtFirst: number;
  /** When the topic held `expected` records. */
  lastMs: number;
  total: number;
}

/**
 * Polls a topic's end offsets every `intervalMs` until it holds `expected` records (from 0): the
 * window from the first poll that saw output to the one that saw the last is the sustained rate's.
 * Throws when nothing new arrives for `stallMs`.
 */
export async function watchTopicFill(
  admin: Admin,
  topic: string,
  expected: number,
  options: { intervalMs?: number; stallMs?: number; startTimeoutMs?: number } = {},
): Promise<FillWatch> {
  const { intervalMs = 10, stallMs = 20_000, startTimeoutMs = 60_000 } = options;
  let firstMs = 0;
  let countAtFirst = 0;
  let lastCount = 0;
  let lastChangeMs = performance.now();
  const startedMs = performance.now();
  for (;;) {
    const total = admin.endOffsetTotal(topic);
    const now = performance.now();
    if (total > 0 && firstMs === 0) {
      firstMs = now;
      countAtFirst = total;
    }
    if (total >= expected) return { firstMs, countAtFirst, lastMs: now, total };
    if (total !== lastCount) {
      lastCount = total;
      lastChangeMs = now;
    }
    if (firstMs === 0 && now - startedMs > startTimeoutMs)
      throw new Error(`${topic}: no output within ${startTimeoutMs} ms`);
    if (firstMs !== 0 && now - lastChangeMs > stallMs)
      throw new Error(`${topic}: stalled at ${total} of ${expected} records`);
    await Bun.sleep(intervalMs);
  }
}

/** Records per second over a fill window: what arrived after the first poll, over the window. */
export function fillRate(watch: FillWatch): number {
  const elapsedMs = watch.lastMs - watch.firstMs;
  return elapsedMs > 0 ? ((watch.total - watch.countAtFirst) / elapsedMs) * 1000 : Number.NaN;
}

/** How long a bench waits for a stage's "started" line (harness/stages.ts waits 20 s). */
const stageStartTimeoutMs = 30_000;

export interface StageRun<T> {
  /** performance.now() just before the stage process was spawned. */
  startedMs: number;
  /** What `until` returned. */
  outcome: T;
  /** CPU seconds (user + system) the stage used while `until` ran. */
  cpuS: number;
  peakRssMiB: number;
  batches: BatchStats;
}

/**
 * Runs a real stage process (as the end-to-end tests start one, with the bench's start timeout)
 * until `until` returns, i.e. the stage has done the bench's work; reads the stage's CPU time over
 * that, its peak RSS and its batch figures, then stops it.
 */
export async function runStage<T>(
  name: StageName,
  env: Record<string, string>,
  until: () => Promise<T>,
): Promise<StageRun<T>> {
  const startedMs = performance.now();
  const stage = await startStage(name, env, undefined, stageStartTimeoutMs);
  try {
    const cpuBefore = await cpuSeconds(stage.process.pid);
    const outcome = await until();
    const cpuS = (await cpuSeconds(stage.process.pid)) - cpuBefore;
    return {
      startedMs,
      outcome,
      cpuS,
      peakRssMiB: await peakRssMiB(stage.process.pid),
      batches: await batchStats(stage.httpPort),
    };
  } finally {
    await stopStage(stage);
  }
}

/** e.g. `stage CPU 1.5 s (75% of one core), peak RSS 210 MiB`. */
export function describeStageUse(run: StageRun<unknown>, windowS: number): string {
  return (
    `stage CPU ${fmt(run.cpuS, 1)} s (${fmt((run.cpuS / windowS) * 100)}% of one core), ` +
    `peak RSS ${run.peakRssMiB} MiB`
  );
}

/** Peak resident memory of a process, from /proc (0 once it has exited). */
export async function peakRssMiB(pid: number): Promise<number> {
  try {
    const status = await Bun.file(`/proc/${pid}/status`).text();
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Math.round(Number(match[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Runs a command to its end; returns its stdout, or throws with its stderr's last line. */
export async function runCommand(
  command: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<string> {
  const child = Bun.spawn(command, { ...options, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (exitCode !== 0) {
    const lastLine = stderr.trim().split("\n").at(-1) ?? "";
    throw new Error(`${command[0]} exited with ${exitCode}: ${lastLine}`);
  }
  return stdout;
}

export function shellWords(words: readonly string[]): string {
  return words.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
}

export function newAdmin(): Admin {
  return new Admin(brokers, {}, quietLogger);
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN once gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await Bun.file(`/proc/${pid}/stat`).text();
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command: state is field 3; utime and stime are fields 14 and 15 (1-based).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

export interface BatchStats {
  batches: number;
  recordsPerBatch: number;
  /** Mean time from a batch's consume to its outputs' acknowledgement (batch_duration_seconds). */
  msPerBatch: number;
  commits: number;
}

/** The stage's consume-loop figures from its /metrics, to see where a run's time went. */
export async function batchStats(httpPort: number): Promise<BatchStats> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const sum = (name: string) => {
    let total = 0;
    for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "gm")))
      total += Number(match[1]);
    return total;
  };
  const batches = sum("batch_duration_seconds_count");
  return {
    batches,
    recordsPerBatch: batches > 0 ? sum("records_consumed_total") / batches : Number.NaN,
    msPerBatch: batches > 0 ? (sum("batch_duration_seconds_sum") / batches) * 1000 : Number.NaN,
    commits: sum("offset_commits_total"),
  };
}

export function describeBatches(stats: BatchStats, windowS: number): string {
  return (
    `${fmt(stats.batches)} batches of ${fmt(stats.recordsPerBatch)} records on average, ` +
    `${fmt(stats.msPerBatch)} ms each from consume to acknowledged outputs, ` +
    `one started every ${fmt((windowS * 1000) / stats.batches, 1)} ms; ${fmt(stats.commits)} commits`
  );
}

/**
 * Autovacuum is off on the local database, so the dead rows a bench's deletes leave stay in the
 * shared tables and slow every scan of them (the rule-updater reads all of `rules`). Plain VACUUM
 * makes the space reusable; `full` also rewrites the table (worth it when few rows are live, as in
 * `rules` after a 1M-rule run), with a lock timeout so that nobody waits behind us for long.
 */
export async function reclaim(sql: Sql, tables: readonly string[], full = false): Promise<string> {
  const connection = await sql.reserve();
  try {
    if (full) {
      await connection.unsafe("SET lock_timeout = '3s'");
      try {
        for (const name of tables) await connection.unsafe(`VACUUM (FULL, ANALYZE) ${name}`);
        return `VACUUM FULL ${tables.join(", ")}`;
      } catch {
        // The lock was not granted in time: fall back to a plain vacuum, which takes no such lock.
      }
    }
    await connection.unsafe(`VACUUM (ANALYZE) ${tables.join(", ")}`);
    return `VACUUM ${tables.join(", ")}`;
  } catch (error) {
    return `vacuum failed: ${error instanceof Error ? error.message : error}`;
  } finally {
    connection.release();
  }
}

/**
 * Retries `work` a few times, 2 s apart: tests running beside the benches restart Postgres now and
 * then ("the database system is shutting down"), and a bench must still count and clean up its rows.
 */
export async function retrying<T>(work: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await Bun.sleep(2000);
    }
  }
}
