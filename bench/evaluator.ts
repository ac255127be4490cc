/**
 * Evaluator stage benchmark: `./dev bench evaluator [alerts]` (default 1M). On the local broker:
 *
 *   ours  the real evaluator process (src/stages/evaluator/main.ts, its own topics, group and Redis
 *         prefix) matching a preloaded alerts.new topic against a 100k-rule snapshot and producing
 *         alerts.matched; alerts/s from the first output record to the last (end offsets polled);
 *   kcat  `kcat -C ... -e | kcat -P ...` of the same input topic to another topic (the I/O limit
 *         of a consume -> produce hop on this machine), measured the same way.
 *
 * Rules: 100k over 10k clients: 85k exact rules, 5k exact (severity, source, name) triples held by
 * two clients each, 5k `source` rules with severity and name wildcards. Alerts (~125 bytes, alert
 * id and two context entries): 80% hit one exact rule, 5% one source wildcard rule, 5% a shared
 * triple (2 clients), 10% no rule. Scopes, as ingest stamps them: each client is granted one of 100
 * shared scopes; an alert comes in 70% under its rule owner's private scope (a random client's when no
 * rule matches it), 20% under the owner's shared scope, 10% internal (no scope), and 2% of all alerts
 * under another client's private scope instead (matched, then filtered out). Expected outputs are counted
 * with the same matcher and scope filter. Target: ours >= 70% of kcat's records/s.
 */

import { connectRedis } from "../src/adapters/redis.ts";
import { snapshotKeys, writeSnapshotIfNewer } from "../src/adapters/snapshot-store.ts";
import { CompiledMatcher } from "../src/core/matching/compiled.ts";
import { clientScope, ScopeFilter, sharedScope } from "../src/core/matching/scope.ts";
import type { Grant, Rule } from "../src/core/matching/types.ts";
import { buildSnapshot, encodeSnapshot } from "../src/core/snapshot.ts";
import { encodeAlertMatched } from "../src/core/wire.ts";
import type { ProduceRecord } from "../src/kafka/index.ts";
import { createRandom } from "../src/stages/alert-producer/random.ts";
import { type BenchAlert, checkAlertEncoding, encodeAlertNew } from "./support/alerts.ts";
import {
  type BatchStats,
  brokers,
  createTopics,
  describeBatches,
  describeStageUse,
  type FillWatch,
  fillRate,
  finish,
  fmt,
  loadText,
  newAdmin,
  newRunId,
  preload,
  ratioRow,
  runStage,
  table,
  watchTopicFill,
} from "./support/common.ts";
import { kcatPassthrough } from "./support/kcat.ts";

const alertCount = Number(process.argv[2] ?? 1_000_000);
const clientCount = 10_000;
const singleRules = 85_000;
const sharedTriples = 5_000;
const wildcardRules = 5_000;
const target = 0.7;
const batchSizeMax = process.env.BATCH_SIZE_MAX ?? "2000";
/** kcat's record delimiter: ASCII (kcat's -f knows only ASCII escapes), checked absent from values. */
const delimiterEscaped = "\\x1e\\x1f\\x1d\\x1c";
const delimiterBytes = Buffer.from([0x1e, 0x1f, 0x1d, 0x1c]);

type Triple = [severity: number, source: string, name: string];

function buildRules(random: () => number): { rules: Rule[]; single: Triple[]; shared: Triple[] } {
  const clients = Array.from({ length: clientCount }, () => crypto.randomUUID());
  const pick = () => clients[Math.floor(random() * clientCount)] as string;
  const used = new Set<string>();
  const freshTriple = (): Triple => {
    for (;;) {
      const triple: Triple = [
        1 + Math.floor(random() * 4),
        `source-${Math.floor(3000 * random() ** 2)}`,
        `alert-${Math.floor(4000 * random() ** 2)}`,
      ];
      const key = triple.join("|");
      if (!used.has(key)) {
        used.add(key);
        return triple;
      }
    }
  };
  const rules: Rule[] = [];
  const rule = (clientId: string, [severity, source, name]: Triple): Rule => ({
    ruleId: crypto.randomUUID(),
    clientId,
    severity,
    source,
    name,
  });
  const single = Array.from({ length: singleRules }, freshTriple);
  for (const triple of single) rules.push(rule(pick(), triple));
  const shared = Array.from({ length: sharedTriples }, freshTriple);
  for (const triple of shared) {
    const first = pick();
    let second = pick();
    while (second === first) second = pick();
    rules.push(rule(first, triple), rule(second, triple));
  }
  for (let k = 0; k < wildcardRules; k++) rules.push(rule(pick(), [0, `wsrc-${k}`, "*"]));
  return { rules, single, shared };
}

function buildAlerts(random: () => number, single: Triple[], shared: Triple[], runId: string): BenchAlert[] {
  const eventTimeUnixMs = Date.now();
  const alerts = new Array<BenchAlert>(alertCount);
  for (let i = 0; i < alertCount; i++) {
    const roll = random();
    let triple: Triple;
    if (roll < 0.8) triple = single[Math.floor(random() * single.length)] as Triple;
    else if (roll < 0.85)
      triple = [
        1 + Math.floor(random() * 4),
        `wsrc-${Math.floor(random() * wildcardRules)}`,
        `alert-${Math.floor(random() * 4000)}`,
      ];
    else if (roll < 0.9) triple = shared[Math.floor(random() * shared.length)] as Triple;
    else
      triple = [1 + Math.floor(random() * 4), `source-${Math.floor(random() * 3000)}`, `unknown-${i % 997}`];
    alerts[i] = {
      alertId: `${runId}-${i}`,
      severity: triple[0],
      source: triple[1],
      name: triple[2],
      context: { host: `host-${i % 500}.example.internal`, region: "eu-west-1" },
      eventTimeUnixMs: eventTimeUnixMs + (i % 60_000),
    };
  }
  return alerts;
}

const sharedScopes = 100;

/** Client i is granted shared scope `team-<i % sharedScopes>`. */
function teamGrants(clients: readonly string[]): Grant[] {
  return clients.map((clientId, i) => ({ scope: `team-${i % sharedScopes}`, clientId }));
}

/** Stamps each alert's scope (see the file comment): its rule owner's, by exact triple or wildcard source. */
function stampScopes(
  random: () => number,
  alerts: BenchAlert[],
  rules: readonly Rule[],
  grants: readonly Grant[],
) {
  const owners = new Map<string, string>();
  for (const rule of rules) {
    const key = rule.name === "*" ? rule.source : `${rule.severity}|${rule.source}|${rule.name}`;
    if (!owners.has(key)) owners.set(key, rule.clientId);
  }
  const teamOf = new Map(grants.map((grant) => [grant.clientId, grant.scope]));
  const clients = grants.map((grant) => grant.clientId);
  const randomClient = () => clients[Math.floor(random() * clients.length)] as string;
  for (const alert of alerts) {
    const owner =
      owners.get(`${alert.severity}|${alert.source}|${alert.name}`) ??
      owners.get(alert.source) ??
      randomClient();
    const roll = random();
    alert.scope =
      roll < 0.02
        ? clientScope(randomClient())
        : roll < 0.1
          ? ""
          : roll < 0.3
            ? sharedScope(teamOf.get(owner) as string)
            : clientScope(owner);
  }
}

interface Result {
  recordsPerS: number;
  watch: FillWatch;
  wallMs: number;
  cpuS?: number;
  peakRssMiB?: number;
  batches?: BatchStats;
}

async function main(): Promise<void> {
  const runId = newRunId();
  const topics = {
    input: `bench-${runId}-eval-in`,
    output: `bench-${runId}-eval-out`,
    kcatOutput: `bench-${runId}-eval-kcat-out`,
  };
  const keys = snapshotKeys(`bench:${runId}:rules:`);
  console.log(
    `evaluator bench ${runId}: ${fmt(alertCount)} alerts, ${fmt(singleRules + 2 * sharedTriples + wildcardRules)} rules, ` +
      `broker ${brokers}, BATCH_SIZE_MAX=${batchSizeMax}; load average ${loadText()}`,
  );
  const random = createRandom(42);
  const { rules, single, shared } = buildRules(random);
  const grants = teamGrants([...new Set(rules.map((rule) => rule.clientId))]);
  const alerts = buildAlerts(random, single, shared, runId);
  stampScopes(random, alerts, rules, grants);
  checkAlertEncoding(alerts.find((alert) => alert.scope !== "") as BenchAlert);
  const matcher = new CompiledMatcher(rules);
  const scopes = new ScopeFilter(grants);
  let expectedOutputs = 0;
  let matchedAlerts = 0;
  const records: ProduceRecord[] = new Array(alertCount);
  const utf8 = new TextEncoder();
  const keyBytes = new Map<string, Uint8Array>();
  let valueBytes = 0;
  for (let i = 0; i < alertCount; i++) {
    const alert = alerts[i] as BenchAlert;
    const groups =
      scopes.admit(alert.scope ?? "", matcher.match(alert.severity, alert.source, alert.name)) ?? [];
    expectedOutputs += groups.length;
    if (groups.length > 0) matchedAlerts++;
    const value = encodeAlertNew(alert);
    if (Buffer.from(value.buffer, value.byteOffset, value.byteLength).includes(delimiterBytes))
      throw new Error("an alert contains kcat's delimiter");
    valueBytes += value.byteLength;
    let key = keyBytes.get(alert.source);
    if (key === undefined) {
      key = utf8.encode(alert.source);
      keyBytes.set(alert.source, key);
    }
    records[i] = { topic: topics.input, key, value };
  }
  // An alerts.matched record for sizing the output: the input plus the client's fields.
  const sampleOut = encodeAlertMatched(records[0]?.value as Uint8Array, undefined, {
    clientId: crypto.randomUUID(),
    ruleIds: [crypto.randomUUID()],
  });
  console.log(
    `alerts: ${fmt(valueBytes / alertCount)} bytes each (alerts.matched ~${sampleOut.byteLength}); ` +
      `${fmt((matchedAlerts / alertCount) * 100, 1)}% match, ${fmt(expectedOutputs / alertCount, 3)} clients per alert ` +
      `-> ${fmt(expectedOutputs)} alerts.matched records`,
  );

  const admin = newAdmin();
  const redis = connectRedis();
  try {
    await createTopics(admin, Object.values(topics));
    const snapshotBytes = encodeSnapshot(buildSnapshot(rules, 1n, BigInt(Date.now()), grants));
    await writeSnapshotIfNewer(redis, keys, snapshotBytes, 1n);
    const preloadMs = await preload(records);
    console.log(`preloaded ${fmt(alertCount)} alerts in ${fmt(preloadMs)} ms`);
    records.length = 0;
    alerts.length = 0;
    Bun.gc(true);

    // ours: the real stage process; the window runs from its first output record to its last.
    const run = await runStage(
      "evaluator",
      {
        INPUT_TOPIC: topics.input,
        OUTPUT_TOPIC: topics.output,
        GROUP_ID: `bench-${runId}-evaluator`,
        RULES_KEY_PREFIX: keys.snapshot.slice(0, -"snapshot".length),
        BATCH_SIZE_MAX: batchSizeMax,
      },
      () => watchTopicFill(admin, topics.output, expectedOutputs),
    );
    const watch = run.outcome;
    const windowS = (watch.lastMs - watch.firstMs) / 1000;
    const ours: Result = {
      // Alerts per second: input records over the output window (outputs ~ alerts here).
      recordsPerS: fillRate(watch) * (alertCount / expectedOutputs),
      watch,
      wallMs: watch.lastMs - run.startedMs,
      cpuS: run.cpuS,
      peakRssMiB: run.peakRssMiB,
      batches: run.batches,
    };
    console.log(
      `ours  ${fmt(ours.recordsPerS)} alerts/s (${fmt(fillRate(watch))} alerts.matched/s) over ${fmt(windowS, 2)} s; ` +
        describeStageUse(run, windowS),
    );
    console.log(`      ${describeBatches(run.batches, windowS)}`);

    // kcat: the same input topic, a fresh group, piped into a producer.
    const kcatStartMs = performance.now();
    const pipeline = kcatPassthrough({
      brokers,
      topicIn: topics.input,
      topicOut: topics.kcatOutput,
      group: `bench-${runId}-kcat`,
      delimiter: delimiterEscaped,
    });
    const kcatWatch = await watchTopicFill(admin, topics.kcatOutput, alertCount);
    await pipeline;
    const kcat: Result = {
      recordsPerS: fillRate(kcatWatch),
      watch: kcatWatch,
      wallMs: kcatWatch.lastMs - kcatStartMs,
    };
    console.log(
      `kcat  ${fmt(kcat.recordsPerS)} records/s over ${fmt((kcatWatch.lastMs - kcatWatch.firstMs) / 1000, 2)} s`,
    );
    const kcatTotal = admin.endOffsetTotal(topics.kcatOutput);
    if (kcatTotal !== alertCount) throw new Error(`kcat wrote ${kcatTotal} records, not ${alertCount}`);
    const ourTotal = admin.endOffsetTotal(topics.output);

    const ratio = ours.recordsPerS / kcat.recordsPerS;
    console.log(
      `\n${table(
        ["alerts.new -> alerts.matched", "records/s", "window s", "start to last output s", "output records"],
        [
          [
            "ours (evaluator process)",
            fmt(ours.recordsPerS),
            fmt((ours.watch.lastMs - ours.watch.firstMs) / 1000, 2),
            fmt(ours.wallMs / 1000, 2),
            fmt(ourTotal),
          ],
          [
            "kcat -C | kcat -P",
            fmt(kcat.recordsPerS),
            fmt((kcat.watch.lastMs - kcat.watch.firstMs) / 1000, 2),
            fmt(kcat.wallMs / 1000, 2),
            fmt(kcatTotal),
          ],
        ],
      )}`,
    );
    console.log(
      `\n${table(
        ["figure", "ours", "kcat", "ours/kcat", "target"],
        [ratioRow("alerts/s", ours.recordsPerS, kcat.recordsPerS, target, "kcat")],
      )}`,
    );
    finish("evaluator", { runId, alertCount, expectedOutputs, batchSizeMax, ours, kcat, ratio, target });
  } finally {
    await redis.del(keys.snapshot, keys.version);
    redis.disconnect();
    admin.close();
  }
}

await main();
