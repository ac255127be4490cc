/**
 * rule-updater: rule.changed -> rebuild the rules snapshot from Postgres -> Redis, then commit.
 * One rebuild per consumed batch, a full one at start, and a reconciliation on a timer that also
 * rebuilds a Redis wiped clean.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { connectPostgres } from "../../adapters/postgres.ts";
import { connectRedis } from "../../adapters/redis.ts";
import { rulesChangedChannel } from "../../adapters/rule-source.ts";
import { snapshotKeys } from "../../adapters/snapshot-store.ts";
import { type RuleChanged, RuleChangedSchema } from "../../gen/alerting/v1/rule_pb.ts";
import type { ConsumedRecord } from "../../kafka/index.ts";
import { envInt, envString } from "../../runtime/config.ts";
import { InvalidRecordError } from "../../runtime/dead-letter.ts";
import { settingsOrExit } from "../../runtime/service.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { RuleUpdater } from "./updater.ts";

const settings = settingsOrExit("rule-updater", () => ({
  inputTopic: envString("INPUT_TOPIC", topicNames.ruleChanged),
  groupId: envString("GROUP_ID", "rule-updater"),
  rulesKeyPrefix: envString("RULES_KEY_PREFIX", "rules:"),
  watchIntervalMs: envInt("SNAPSHOT_WATCH_INTERVAL_MS", 1000, { min: 50, max: 60_000 }),
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
  async createProcessor({ logger }) {
    const sql = connectPostgres({ connectionsMax: 4 });
    const redis = connectRedis();
    const keys = snapshotKeys(settings.rulesKeyPrefix);
    const updater = new RuleUpdater(sql, redis, keys, logger);
    await updater.rebuild();
    const { watchIntervalMs } = settings;
    const reconcileEvery = Math.max(1, Math.round(settings.reconcileIntervalMs / watchIntervalMs));
    let ticks = 0;
    let busy = false;
    // A missing key means Redis lost its data: rebuild within a second, not at the next reconcile.
    const watch = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        ticks++;
        if ((await redis.exists(keys.snapshot, keys.version)) < 2) await updater.rebuild();
        else if (ticks % reconcileEvery === 0) await updater.reconcile();
      } catch (error) {
        logger.warn("snapshot watch failed, will retry", { error });
      } finally {
        busy = false;
      }
    }, watchIntervalMs);
    // Backstop to rule.changed: Postgres announces every committed rule change, so the snapshot
    // follows even while the outbox relay or Kafka is down. Bursts coalesce into one rebuild.
    let rebuildQueued = false;
    const listener = await sql.listen(rulesChangedChannel, () => {
      if (rebuildQueued) return;
      rebuildQueued = true;
      setTimeout(() => {
        rebuildQueued = false;
        updater.rebuild().catch((error: unknown) => logger.warn("rebuild on notify failed", { error }));
      }, 20);
    });
    return {
      processor: {
        decode: decodeRuleChanged,
        async process() {
          await updater.rebuild();
          return [];
        },
      },
      async close() {
        clearInterval(watch);
        await listener.unlisten();
        redis.disconnect();
        await sql.end({ timeout: 2 });
      },
    };
  },
});
