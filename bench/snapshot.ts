/**
 * Rules snapshot rebuild benchmark: `./dev bench snapshot`. For 10k, 100k and 1M rules (the mix of
 * bench/match.ts: 55% exact, 45% with one or two wildcards) inserted into Postgres under clients of
 * this run only, times each step of the rule-updater's rebuild and of the evaluator's load:
 *
 *   query    the loadEnabledRules statement shape (a transaction, an advisory lock, one SELECT of the
 *            enabled rules) and the row -> Rule mapping, but restricted to this run's clients
 *            (`AND client_id = ANY(...)`): the rules table is shared, and the real updater reads all
 *            of it. The version comes from the bench, not from the shared sequence, and the lock key
 *            is bench-only, so a running updater is neither bumped nor blocked;
 *   build    buildSnapshot;  encode  encodeSnapshot;
 *   write    writeSnapshotIfNewer under a bench-only key prefix (Lua compare-and-set + PUBLISH);
 *   read     readSnapshotBytes + decodeSnapshot (what an evaluator does before compiling).
 *
 * Each size runs twice on the same rows and the faster rebuild is printed. Target: 1M rules
 * queried, built, encoded and written in < 2 s; < 64 bytes per rule. The run deletes its clients
 * (rules cascade) and Redis keys afterwards.
 */
import { connectPostgres, type Sql } from "../src/adapters/postgres.ts";
import { connectRedis } from "../src/adapters/redis.ts";
import { readSnapshotBytes, snapshotKeys, writeSnapshotIfNewer } from "../src/adapters/snapshot-store.ts";
import type { Rule } from "../src/core/matching/types.ts";
import { parseSeverityPattern, severityPatternName } from "../src/core/severity.ts";
import { buildSnapshot, decodeSnapshot, encodeSnapshot } from "../src/core/snapshot.ts";
import { realisticRules } from "./match.ts";
import {
  fmt,
  loadText,
  newRunId,
  reclaim,
  retrying,
  table,
  verdict,
  writeResults,
} from "./support/common.ts";

const sizes = (process.argv[2] ?? "10000,100000,1000000").split(",").map(Number);
const repetitions = 2;
const insertChunk = 50_000;
const benchLockKey = 7_414_220_999; // not the updater's key: the bench never blocks a real rebuild
const targetTotalMs = 2000;
const targetBytesPerRule = 64;

interface Steps {
  queryMs: number;
  buildMs: number;
  encodeMs: number;
  writeMs: number;
  readMs: number;
  decodeMs: number;
  totalMs: number;
  bytes: number;
  rules: number;
}

const runId = newRunId();
const sql = connectPostgres({ connectionsMax: 2 });
const redis = connectRedis();
const keys = snapshotKeys(`bench:${runId}:rules:`);

/** `count` rules unique per (client, severity, source, name), as the table's constraint requires. */
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

async function insertRules(db: Sql, rules: readonly Rule[]): Promise<string[]> {
  const clientIds = [...new Set(rules.map((r) => r.clientId))];
  for (let first = 0; first < clientIds.length; first += insertChunk) {
    const ids = clientIds.slice(first, first + insertChunk);
    await db.unsafe(
      `INSERT INTO clients (id, name) SELECT id, 'bench-snapshot-' || id FROM unnest($1::uuid[]) AS t(id)`,
      [ids] as never[],
    );
  }
  for (let first = 0; first < rules.length; first += insertChunk) {
    const chunk = rules.slice(first, first + insertChunk);
    await db.unsafe(
      `INSERT INTO rules (id, client_id, severity, source, name)
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
  return clientIds;
}

/** loadEnabledRules' shape, restricted to this run's clients (see the header). */
async function loadBenchRules(db: Sql, clientIds: readonly string[]): Promise<Rule[]> {
  return (await db.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${benchLockKey})`;
    const rows = await tx.unsafe<
      { id: string; client_id: string; severity: string; source: string; name: string }[]
    >(
      "SELECT id, client_id, severity, source, name FROM rules WHERE enabled AND client_id = ANY($1::uuid[])",
      [clientIds] as never[],
    );
    return rows.map(
      (r): Rule => ({
        ruleId: r.id,
        clientId: r.client_id,
        severity: parseSeverityPattern(r.severity),
        source: r.source,
        name: r.name,
      }),
    );
  })) as Rule[];
}

let version = BigInt(Date.now()) * 1000n;

async function measure(clientIds: readonly string[], expected: number): Promise<Steps> {
  let mark = performance.now();
  const lap = () => {
    const now = performance.now();
    const elapsed = now - mark;
    mark = now;
    return elapsed;
  };
  const rules = await loadBenchRules(sql, clientIds);
  const queryMs = lap();
  if (rules.length !== expected) throw new Error(`read ${rules.length} rules, expected ${expected}`);
  version += 1n;
  const snapshot = buildSnapshot(rules, version, BigInt(Date.now()));
  const buildMs = lap();
  const bytes = encodeSnapshot(snapshot);
  const encodeMs = lap();
  if (!(await writeSnapshotIfNewer(redis, keys, bytes, version))) throw new Error("snapshot not written");
  const writeMs = lap();
  const stored = await readSnapshotBytes(redis, keys);
  const readMs = lap();
  if (stored === undefined) throw new Error("snapshot not read back");
  const decoded = decodeSnapshot(stored);
  const decodeMs = lap();
  if (decoded.ruleClient.length !== expected) throw new Error("decoded snapshot has the wrong rule count");
  return {
    queryMs,
    buildMs,
    encodeMs,
    writeMs,
    readMs,
    decodeMs,
    totalMs: queryMs + buildMs + encodeMs + writeMs,
    bytes: bytes.byteLength,
    rules: rules.length,
  };
}

async function main(): Promise<void> {
  console.log(
    `snapshot bench ${runId}: sizes ${sizes.map((s) => fmt(s)).join(", ")}, best of ${repetitions}; ` +
      `load average ${loadText()}`,
  );
  console.log(
    "note: the query reads only this run's clients' rules (AND client_id = ANY(...)); the real updater reads every enabled rule",
  );
  const results: Steps[] = [];
  for (const count of sizes) {
    const rules = uniqueRules(count);
    const insertStart = performance.now();
    let clientIds: string[] = [];
    try {
      clientIds = await insertRules(sql, rules);
      await sql`ANALYZE rules`.catch(() => {}); // fresh rows: let the planner see them
      const insertMs = performance.now() - insertStart;
      let best: Steps | undefined;
      for (let rep = 0; rep < repetitions; rep++) {
        const steps = await measure(clientIds, count);
        if (best === undefined || steps.totalMs < best.totalMs) best = steps;
      }
      results.push(best as Steps);
      console.log(
        `${fmt(count).padStart(9)} rules over ${fmt(clientIds.length)} clients: inserted in ${fmt(insertMs)} ms; ` +
          `rebuild ${fmt((best as Steps).totalMs)} ms`,
      );
    } finally {
      for (let first = 0; first < clientIds.length; first += insertChunk)
        await retrying(() =>
          sql.unsafe("DELETE FROM clients WHERE id = ANY($1::uuid[])", [
            clientIds.slice(first, first + insertChunk),
          ] as never[]),
        );
    }
  }
  const header = [
    "rules",
    "query ms",
    "build ms",
    "encode ms",
    "write ms",
    "rebuild total ms",
    "read ms",
    "decode ms",
    "bytes",
    "bytes/rule",
    "target",
  ];
  const rows = results.map((r) => {
    const bytesPerRule = r.bytes / r.rules;
    const target =
      r.rules >= 1_000_000
        ? `< ${targetTotalMs} ms, < ${targetBytesPerRule} B/rule: ${verdict(r.totalMs < targetTotalMs && bytesPerRule < targetBytesPerRule)}`
        : `< ${targetBytesPerRule} B/rule: ${verdict(bytesPerRule < targetBytesPerRule)}`;
    return [
      fmt(r.rules),
      fmt(r.queryMs),
      fmt(r.buildMs),
      fmt(r.encodeMs),
      fmt(r.writeMs),
      fmt(r.totalMs),
      fmt(r.readMs),
      fmt(r.decodeMs),
      fmt(r.bytes),
      fmt(r.bytes / r.rules, 1),
      target,
    ];
  });
  console.log(`\n${table(header, rows)}`);
  console.log("rebuild total = query + build + encode + write (what the rule-updater does per rebuild)");
  console.log(`load average at the end: ${loadText()}`);
  const path = writeResults("snapshot", { runId, loadAverage: loadText(), results });
  console.log(`results: ${path}`);
}

try {
  await main();
} finally {
  await redis.del(keys.snapshot, keys.version);
  console.log(`cleanup: ${await reclaim(sql, ["rules", "clients"], true)}`);
  redis.disconnect();
  await sql.end({ timeout: 5 });
}
