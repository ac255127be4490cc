/**
 * Does a stage keep its rate while bad records arrive? `./dev bench dead-letters [alerts]`
 * (default 300k). Two runs of the real evaluator process on the local broker, each over its own
 * preloaded alerts.new topic of the same size:
 *
 *   clean  every record a valid alert (half match one rule, half none);
 *   dirty  the same stream with 10% of the records replaced by bad ones: random bytes (4%), a
 *          truncated protobuf (3%), an unsupported schema_version (2.95%) and huge records (0.05%,
 *          a valid alert padded to 600 KB, over the 512 KiB record limit).
 *
 * Input records/s = the topic's records over the window from the first output (alerts.matched or
 * dead letter) to the last; the dirty run must also dead-letter exactly the bad records.
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
/** The dirty run's record at index i is bad when i % 2000 falls below these bounds. */
const badKinds = [
  { kind: "random bytes", below: 80 },
  { kind: "truncated", below: 140 },
  { kind: "schema_version 99", below: 199 },
  { kind: "huge (600 KB)", below: 200 },
] as const;
const hugePaddingBytes = 600_000;

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

/** The bad record for index i of the dirty run, or undefined when that record stays valid. */
function badRecord(i: number, valid: BenchAlert, random: () => number): Uint8Array | undefined {
  const slot = i % 2000;
  if (slot < badKinds[0].below)
    return crypto.getRandomValues(new Uint8Array(20 + Math.floor(random() * 200)));
  const bytes = encodeAlertNew(valid);
  if (slot < badKinds[1].below) return bytes.slice(0, Math.floor(bytes.length / 2));
  if (slot < badKinds[2].below) {
    const out = new Uint8Array(bytes.length + 2);
    out.set(bytes);
    out.set([7 << 3, 99], bytes.length); // schema_version (field 7, varint) = 99; the last one wins
    return out;
  }
  if (slot < badKinds[3].below)
    return encodeAlertNew({ ...valid, context: { ...valid.context, padding: "x".repeat(hugePaddingBytes) } });
  return undefined;
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
    for (const dirty of [false, true]) {
      const name = dirty ? "dirty" : "clean";
      const topics = { input: `bench-${runId}-${name}-in`, output: `bench-${runId}-${name}-out` };
      await createTopics(admin, Object.values(topics));
      const random = createRandom(7);
      const utf8 = new TextEncoder();
      const records: ProduceRecord[] = new Array(alertCount);
      let expectedMatched = 0;
      let expectedDead = 0;
      for (let i = 0; i < alertCount; i++) {
        const valid = alert(runId, i, random);
        const bad = dirty ? badRecord(i, valid, random) : undefined;
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
          GROUP_ID: `bench-${runId}-${name}`,
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
    }
    const clean = results.clean as Run;
    const dirty = results.dirty as Run;
    console.log(
      `\n${table(
        ["evaluator input", "records/s", "window s", "alerts.matched", "dead letters", "peak RSS MiB"],
        [clean, dirty].map((r, index) => [
          index === 0 ? "clean" : "10% bad",
          fmt(r.recordsPerS),
          fmt(r.windowS, 2),
          fmt(r.matched),
          fmt(r.deadLettered),
          fmt(r.peakRssMiB),
        ]),
      )}`,
    );
    console.log(
      `\nbad kinds per 2000 records: ${badKinds.map((k, i) => `${k.kind} ${k.below - (badKinds[i - 1]?.below ?? 0)}`).join(", ")}`,
    );
    console.log(`dirty/clean records/s: ${fmt(dirty.recordsPerS / clean.recordsPerS, 2)}`);
    finish("dead-letters", { runId, alertCount, clean, dirty, ratio: dirty.recordsPerS / clean.recordsPerS });
  } finally {
    await redis.del(keys.snapshot, keys.version);
    redis.disconnect();
    admin.close();
  }
}

await main();
