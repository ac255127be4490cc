/**
 * rule-updater: rule.changed -> rebuild the rules snapshot from Postgres -> Redis, then commit.
 * One rebuild per consumed batch, a full one at start, and the snapshot watch (updater.ts) for what
 * no record brings: a Redis wiped clean, a lost event, rule changes while the outbox relay is down.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { connectPostgres } from "../../adapters/postgres.ts";
import { connectRedis } from "../../adapters/redis.ts";
import { snapshotKeys } from "../../adapters/snapshot-store.ts";
import { type RuleChanged, RuleChangedSchema } from "../../gen/alerting/v1/rule_pb.ts";
import type { ConsumedRecord } from "../../kafka/index.ts";
import { envInt, envString } from "../../runtime/config.ts";
import { InvalidRecordError } from "../../runtime/dead-letter.ts";
import { settleWithin } from "../../runtime/deadline.ts";
import { settingsOrExit } from "../../runtime/service.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { RuleUpdater, startSnapshotWatch } from "./updater.ts";

const settings = settingsOrExit("rule-updater", () => ({
  inputTopic: envString("INPUT_TOPIC", topicNames.ruleChanged),
  groupId: envString("GROUP_ID", "rule-updater"),
  rulesKeyPrefix: envString("RULES_KEY_PREFIX", "rules:"),
  // A missing key means Redis lost its data: rebuild within a check interval, not at the next reconcile.
  checkIntervalMs: envInt("SNAPSHOT_WATCH_INTERVAL_MS", 1000, { min: 50, max: 60_000 }),
  reconcileIntervalMs: envInt("RECONCILE_INTERVAL_MS", 30_000, { min: 1000, max: 3_600_000 }),
}));

function decodeRuleChanged(record: ConsumedRecord): RuleChanged {
  let message: RuleChanged;
  try {
    message = fromBinary(RuleChangedSchema, record.value ?? new Uint8Array(0));
  } catch (error) {
    throw new InvalidRecordError("value", `not a RuleChanged protobuf: ${(error as Error).message}`);
  }
  if (message.schemaVersion > 1)
    throw new InvalidRecordError("schema_version", `unsupported version ${message.schemaVersion}`);
  if (message.ruleId === "") throw new InvalidRecordError("rule_id", "missing");
  return message;
}

await runConsumerStage({
  name: "rule-updater",
  topic: settings.inputTopic,
  groupId: settings.groupId,
  async createProcessor({ logger, processTimeoutMs }) {
    const sql = connectPostgres({ connectionsMax: 4 });
    const redis = connectRedis();
    const updater = new RuleUpdater(sql, redis, snapshotKeys(settings.rulesKeyPrefix), logger);
    await settleWithin(updater.rebuild(), processTimeoutMs, "the rebuild at start");
    const watch = await startSnapshotWatch(updater, logger, {
      checkIntervalMs: settings.checkIntervalMs,
      reconcileIntervalMs: settings.reconcileIntervalMs,
      runTimeoutMs: processTimeoutMs,
    });
    return {
      processor: {
        decode: decodeRuleChanged,
        async process() {
          await updater.rebuild();
          return [];
        },
      },
      failed: watch.failed,
      async close() {
        await watch.stop(2000);
        redis.disconnect();
        await sql.end({ timeout: 2 });
      },
    };
  },
});
