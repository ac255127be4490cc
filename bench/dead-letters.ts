/**
 * Does a stage keep its rate while bad records arrive? `./dev bench dead-letters [alerts]`
 * (default 300k). Two runs of the real evaluator process on the local broker, each over its own
 * preloaded alerts.new topic of the same size:
 *
 *   clean  every record a valid alert (half match one rule, half none);
 *   1%, 10% the same stream with that share of the records replaced by bad ones: random bytes (40%
 *          of them), a truncated protobuf (30%), an unsupported schema_version, and one record in
 *          2000 huge (a valid alert padded to 600 KB, over the 512 KiB record limit).
 *
 * Input records/s = the topic's records over the window from the first output (alerts.matched or
 * dead letter) to the last; each run must dead-letter exactly its bad records.
 */

import { connectRedis } from "../src/adapters/redis.ts";
import { snapshotKeys, writeSnapshotIfNewer } from "../src/adapters/snapshot-store.ts";
import type { Rule } from "../src/core/matching/types.ts";
import { buildSnapshot, encodeSnapshot } from "../src/core/snapshot.ts";
import type { ProduceRecord } from "../src/kafka/index.ts";
import { deadLetterTopic } from "../src/runtime/topics.ts";
import { createRandom } from "../src/stages/alert-producer/random.ts";
import { type BenchAlert, encodeAlertNew } from "./support/alerts.ts";
import {
  brokers,
  createTopics,
  describeBatches,
  describeStageUse,
  type FillWatch,
  finish,
  fmt,
  loadText,
  newAdmin,
  newRunId,
  preload,
  runStage,
  table,
  watchTopicFill,
} from "./support/common.ts";

const alertCount = Number(process.argv[2] ?? 300_000);
const ruleCount = 1000;
/** The runs: percent of the records replaced by bad ones. */
const badPercents = [0, 1, 10] as const;
const hugePaddingBytes = 600_000;
type BadKind = "random bytes" | "truncated" | "schema_version 99" | "huge (600 KB)";

/**
 * Which bad record replaces record i, if any: in each block of 2000 records the first 20 x percent
 * are bad, 40% of them random bytes, 30% truncated, the rest an unsupported schema_version, except
 * the last one, which is huge.
 */
function badKindOf(i: number, percent: number): BadKind | undefined {
  const slot = i % 2000;
  const bad = 20 * percent;
  if (slot >= bad) return undefined;
  if (slot === bad - 1) return "huge (600 KB)";
  if (slot < bad * 0.4) return "random bytes";
  if (slot < bad * 0.7) return "truncated";
  return "schema_version 99";
}

function alert(runId: string, i: number, random: () => number): BenchAlert {
  const rule = Math.floor(random() * ruleCount);
  return {
    alertId: `${runId}-${i}`,
    severity: 3,
    source: `source-${rule}`,
    // Half the alerts match their source's rule, half no rule.
    name: i % 2 === 0 ? "cpu" : `other-${i % 97}`,
    context: { host: `host-${i % 500}.example.internal`, region: "eu-west-1" },
    eventTimeUnixMs: Date.now(),
  };
}

function badRecord(kind: BadKind, valid: BenchAlert, random: () => number): Uint8Array {
  if (kind === "random bytes") return crypto.getRandomValues(new Uint8Array(20 + Math.floor(random() * 200)));
  if (kind === "huge (600 KB)")
    return encodeAlertNew({ ...valid, context: { ...valid.context, padding: "x".repeat(hugePaddingBytes) } });
  const bytes = encodeAlertNew(valid);
  if (kind === "truncated") return bytes.slice(0, Math.floor(bytes.length / 2));
  const out = new Uint8Array(bytes.length + 2);
  out.set(bytes);
  out.set([7 << 3, 99], bytes.length); // schema_version (field 7, varint) = 99; the last one wins
  return out;
}

interface Run {
  recordsPerS: number;
  windowS: number;
  matched: number;
  deadLettered: number;
  cpuS: number;
  peakRssMiB: number;
}

async function main(): Promise<void> {
  const runId = newRunId();
  console.log(
    `dead-letter bench ${runId}: ${fmt(alertCount)} records per run, broker ${brokers}; load average ${loadText()}`,
  );
  const rules: Rule[] = Array.from({ length: ruleCount }, (_, k) => ({
    ruleId: crypto.randomUUID(),
    clientId: crypto.randomUUID(),
    severity: 3,
    source: `source-${k}`,
    name: "cpu",
  }));
  const keys = snapshotKeys(`bench:${runId}:rules:`);
  const admin = newAdmin();
  const redis = connectRedis();
  const results: Record<string, Run> = {};
  try {
    await writeSnapshotIfNewer(redis, keys, encodeSnapshot(buildSnapshot(rules, 1n, BigInt(Date.now()))), 1n);
    for (const percent of badPercents) {
      const name = percent === 0 ? "clean" : `${percent}% bad`;
      const slug = `bad${percent}`;
      const topics = { input: `bench-${runId}-${slug}-in`, output: `bench-${runId}-${slug}-out` };
      await createTopics(admin, Object.values(topics));
      const random = createRandom(7);
      const utf8 = new TextEncoder();
      const records: ProduceRecord[] = new Array(alertCount);
      let expectedMatched = 0;
      let expectedDead = 0;
      for (let i = 0; i < alertCount; i++) {
        const valid = alert(runId, i, random);
        const kind = badKindOf(i, percent);
        const bad = kind ? badRecord(kind, valid, random) : undefined;
        if (bad) expectedDead++;
        else if (valid.name === "cpu") expectedMatched++;
        records[i] = {
          topic: topics.input,
          key: utf8.encode(valid.source),
          value: bad ?? encodeAlertNew(valid),
        };
      }
      const preloadMs = await preload(records);
      records.length = 0;
      Bun.gc(true);
      console.log(
        `${name}: preloaded ${fmt(alertCount)} records (${fmt(expectedDead)} bad) in ${fmt(preloadMs)} ms`,
      );

      const run = await runStage(
        "evaluator",
        {
          INPUT_TOPIC: topics.input,
          OUTPUT_TOPIC: topics.output,
          GROUP_ID: `bench-${runId}-${slug}`,
          RULES_KEY_PREFIX: keys.snapshot.slice(0, -"snapshot".length),
        },
        async () => {
          const watches: FillWatch[] = await Promise.all([
            watchTopicFill(admin, topics.output, expectedMatched),
            ...(expectedDead > 0 ? [watchTopicFill(admin, deadLetterTopic(topics.input), expectedDead)] : []),
          ]);
          return {
            firstMs: Math.min(...watches.map((w) => w.firstMs)),
            lastMs: Math.max(...watches.map((w) => w.lastMs)),
          };
        },
      );
      const windowS = (run.outcome.lastMs - run.outcome.firstMs) / 1000;
      const result: Run = {
        recordsPerS: alertCount / windowS,
        windowS,
        matched: admin.endOffsetTotal(topics.output),
        deadLettered: admin.endOffsetTotal(deadLetterTopic(topics.input)),
        cpuS: run.cpuS,
        peakRssMiB: run.peakRssMiB,
      };
      if (result.matched !== expectedMatched || result.deadLettered !== expectedDead)
        throw new Error(
          `${name}: ${result.matched} matched (expected ${expectedMatched}), ${result.deadLettered} dead letters (expected ${expectedDead})`,
        );
      results[name] = result;
      console.log(
        `${name}: ${fmt(result.recordsPerS)} records/s over ${fmt(windowS, 2)} s; ${describeStageUse(run, windowS)}`,
      );
      console.log(`       ${describeBatches(run.batches, windowS)}`);
    }
    const clean = results.clean as Run;
    console.log(
      `\n${table(
        [
          "evaluator input",
          "records/s",
          "vs clean",
          "window s",
          "alerts.matched",
          "dead letters",
          "CPU s",
          "peak RSS MiB",
        ],
        Object.entries(results).map(([name, r]) => [
          name,
          fmt(r.recordsPerS),
          fmt(r.recordsPerS / clean.recordsPerS, 2),
          fmt(r.windowS, 2),
          fmt(r.matched),
          fmt(r.deadLettered),
          fmt(r.cpuS, 1),
          fmt(r.peakRssMiB),
        ]),
      )}`,
    );
    finish("dead-letters", { runId, alertCount, results });
  } finally {
    await redis.del(keys.snapshot, keys.version);
    redis.disconnect();
    admin.close();
  }
}

await main();
