/**
 * Rules snapshot rebuild benchmark: `./dev bench snapshot [sizes] [repetitions]` (default
 * `10000,100000,1000000` and 5). For each size, the rules (the mix of bench/match.ts: 55% exact, 45%
 * with one or two wildcards) go into a table of this run's own with the rules table's columns, so the
 * shared rules table, which every other test's updater reads whole, never holds a million bench rows.
 * Each repetition times the rule-updater's rebuild and the evaluator's load step by step:
 *
 *   copy     the COPY stream alone, drained without parsing: the floor under load (server and driver);
 *   load     copyEnabledRules: the same stream parsed into the columnar builder, in a transaction behind an
 *            advisory lock, as loadRulesSnapshot does (the lock key is bench-only, so a running updater
 *            is never blocked, and the version comes from the bench, not from the shared sequence);
 *   build    SnapshotBuilder.build;  encode  encodeSnapshot;
 *   write    writeSnapshotIfNewer under a bench-only key prefix (staged SET, then the compare-and-swap);
 *   read     readSnapshotBytes;  decode  decodeSnapshot (what an evaluator does before compiling);
 *   select   for reference, the path COPY replaced: SELECT through postgres.js, rows mapped to Rules,
 *            buildSnapshot.
 *
 * Every step is timed from a collected heap and printed as the median over the repetitions. Target: 1M
 * rules loaded, built, encoded and written in < 2 s; < 64 bytes per rule. The run drops its table and
 * deletes its Redis keys afterwards.
 */
import { connectPostgres, type Sql, type TransactionSql } from "../src/adapters/postgres.ts";
import { connectRedis } from "../src/adapters/redis.ts";
import { copyEnabledRules } from "../src/adapters/rule-source.ts";
import { ruleCopyColumns } from "../src/adapters/rules-copy.ts";
import { readSnapshotBytes, snapshotKeys, writeSnapshotIfNewer } from "../src/adapters/snapshot-store.ts";
import type { Rule } from "../src/core/matching/types.ts";
import { parseSeverityPattern, severityPatternName } from "../src/core/severity.ts";
import { buildSnapshot, decodeSnapshot, encodeSnapshot, type Snapshot } from "../src/core/snapshot.ts";
import { realisticRules } from "./match.ts";
import { fmt, loadText, newRunId, table, verdict, writeResults } from "./support/common.ts";

const sizes = (process.argv[2] ?? "10000,100000,1000000").split(",").map(Number);
const repetitions = Number(process.argv[3] ?? 5);
const insertChunk = 50_000;
const benchLockKey = 7_414_220_999; // not the updater's key: the bench never blocks a real rebuild
const targetTotalMs = 2000;
const targetBytesPerRule = 64;

const steps = ["copy", "load", "build", "encode", "write", "rebuild", "read", "decode", "select"] as const;
type Step = (typeof steps)[number];
type Times = Record<Step, number>;

const runId = newRunId();
const rulesTable = `bench_snapshot_${runId}`;
const sql = connectPostgres({ connectionsMax: 2 });
const redis = connectRedis();
const keys = snapshotKeys(`bench:${runId}:rules:`);

/** `count` rules unique per (client, severity, source, name), as the rules table's constraint requires. */
function uniqueRules(count: number): Rule[] {
  const seen = new Set<string>();
  const out: Rule[] = [];
  for (let seed = 1; out.length < count; seed++) {
    for (const rule of realisticRules(Math.ceil(count * 1.2), seed)) {
      const key = `${rule.clientId}|${rule.severity}|${rule.source}|${rule.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(rule);
      if (out.length === count) break;
    }
  }
  return out;
}

async function insertRules(db: Sql, rules: readonly Rule[]): Promise<void> {
  await db.unsafe(`TRUNCATE ${rulesTable}`);
  for (let first = 0; first < rules.length; first += insertChunk) {
    const chunk = rules.slice(first, first + insertChunk);
    await db.unsafe(
      `INSERT INTO ${rulesTable} (id, client_id, severity, source, name)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])`,
      [
        chunk.map((r) => r.ruleId),
        chunk.map((r) => r.clientId),
        chunk.map((r) => severityPatternName(r.severity)),
        chunk.map((r) => r.source),
        chunk.map((r) => r.name),
      ] as never[],
    );
  }
  await db.unsafe(`VACUUM ANALYZE ${rulesTable}`); // as an aged table would be: hint bits set, visibility map
}

/** A transaction behind the bench's advisory lock, as loadRulesSnapshot takes the updater's. */
function locked<T>(work: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${benchLockKey})`;
    return work(tx);
  }) as Promise<T>;
}

/** The bytes of the COPY stream, read and dropped. */
async function drainCopy(tx: TransactionSql): Promise<number> {
  const stream = await tx`
    COPY (SELECT ${tx.unsafe(ruleCopyColumns)} FROM ${tx(rulesTable)} WHERE enabled) TO STDOUT (FORMAT binary)`.readable();
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (chunk: Uint8Array) => {
      bytes += chunk.length;
    });
    stream.on("error", reject);
    stream.on("end", resolve);
  });
  return bytes;
}

/** The path before COPY: postgres.js row objects mapped to Rules, then buildSnapshot. */
async function selectAndBuild(tx: TransactionSql, version: bigint): Promise<Snapshot> {
  const rows = await tx<{ id: string; client_id: string; severity: string; source: string; name: string }[]>`
    SELECT id, client_id, severity, source, name FROM ${tx(rulesTable)} WHERE enabled`;
  const rules = rows.map(
    (r): Rule => ({
      ruleId: r.id,
      clientId: r.client_id,
      severity: parseSeverityPattern(r.severity),
      source: r.source,
      name: r.name,
    }),
  );
  return buildSnapshot(rules, version, BigInt(Date.now()));
}

let version = BigInt(Date.now()) * 1000n;

async function measure(expected: number): Promise<Times & { bytes: number }> {
  let mark = 0;
  /** Collects garbage, then starts the clock, so no step pays for the previous one's garbage. */
  const start = () => {
    Bun.gc(true);
    mark = performance.now();
  };
  const lap = () => {
    const now = performance.now();
    const elapsed = now - mark;
    mark = now;
    return elapsed;
  };
  const check = (rules: number, what: string) => {
    if (rules !== expected) throw new Error(`${what}: ${rules} rules, expected ${expected}`);
  };
  start();
  await locked(drainCopy);
  const copy = lap();
  start();
  const builder = await locked((tx) => copyEnabledRules(tx, rulesTable));
  const load = lap();
  version += 1n;
  const snapshot = builder.build(version, BigInt(Date.now()));
  const build = lap();
  check(snapshot.ruleClient.length, "load");
  const bytes = encodeSnapshot(snapshot);
  const encode = lap();
  if (!(await writeSnapshotIfNewer(redis, keys, bytes, version))) throw new Error("snapshot not written");
  const write = lap();
  start();
  const stored = await readSnapshotBytes(redis, keys);
  const read = lap();
  if (stored === undefined) throw new Error("snapshot not read back");
  const decoded = decodeSnapshot(stored);
  const decode = lap();
  check(decoded.ruleClient.length, "decode");
  start();
  const selected = await locked((tx) => selectAndBuild(tx, version));
  const select = lap();
  check(selected.ruleClient.length, "select");
  const rebuild = load + build + encode + write;
  return { copy, load, build, encode, write, rebuild, read, decode, select, bytes: bytes.byteLength };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  console.log(
    `snapshot bench ${runId}: sizes ${sizes.map((s) => fmt(s)).join(", ")}, median of ${repetitions}; ` +
      `load average ${loadText()}`,
  );
  await sql.unsafe(`CREATE TABLE ${rulesTable} (LIKE rules INCLUDING DEFAULTS)`);
  const results: { rules: number; bytes: number; median: Times; runs: Times[] }[] = [];
  for (const count of sizes) {
    const insertStart = performance.now();
    await insertRules(sql, uniqueRules(count));
    const insertMs = performance.now() - insertStart;
    const runs: (Times & { bytes: number })[] = [];
    for (let rep = 0; rep < repetitions; rep++) runs.push(await measure(count));
    const medians = Object.fromEntries(steps.map((step) => [step, median(runs.map((run) => run[step]))]));
    const result = { rules: count, bytes: runs[0]?.bytes ?? 0, median: medians as Times, runs };
    results.push(result);
    console.log(
      `${fmt(count).padStart(9)} rules: inserted in ${fmt(insertMs)} ms; rebuild ` +
        `${runs.map((run) => fmt(run.rebuild)).join(", ")} ms`,
    );
  }
  const header = [
    "rules",
    ...steps.map((step) => (step === "rebuild" ? "rebuild total ms" : `${step} ms`)),
    "bytes/rule",
    "target",
  ];
  const rows = results.map(({ rules, bytes, median }) => {
    const bytesPerRule = bytes / rules;
    const target =
      rules >= 1_000_000
        ? `< ${targetTotalMs} ms, < ${targetBytesPerRule} B/rule: ${verdict(median.rebuild < targetTotalMs && bytesPerRule < targetBytesPerRule)}`
        : `< ${targetBytesPerRule} B/rule: ${verdict(bytesPerRule < targetBytesPerRule)}`;
    return [fmt(rules), ...steps.map((step) => fmt(median[step])), fmt(bytesPerRule, 1), target];
  });
  console.log(`\n${table(header, rows)}`);
  console.log(
    "medians; rebuild total = load + build + encode + write (what the rule-updater does per rebuild); " +
      "select = the path before COPY (SELECT rows + buildSnapshot), for comparison with load + build",
  );
  console.log(`load average at the end: ${loadText()}`);
  const path = writeResults("snapshot", { runId, loadAverage: loadText(), results });
  console.log(`results: ${path}`);
}

try {
  await main();
} finally {
  await redis.del(keys.snapshot, keys.version);
  await sql.unsafe(`DROP TABLE IF EXISTS ${rulesTable}`);
  redis.disconnect();
  await sql.end({ timeout: 5 });
}
