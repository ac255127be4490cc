/**
 * aggregator: alerts.matched -> notifications rows (deduplicated) -> notifications.ready, the
 * lifecycle sweep (resolve timeout, repeat interval) whose rows the sender's scheduler picks up, and
 * the data plane's retention.
 */
import { connectPostgres } from "../../adapters/postgres.ts";
import { alertmanagerGroupDefaults } from "../../core/grouping.ts";
import { ConfigError, envInt, envString } from "../../runtime/config.ts";
import { createLogger } from "../../runtime/log.ts";
import { settingsOrExit } from "../../runtime/service.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames, topicRetentionDays } from "../../runtime/topics.ts";
import { createAggregatorProcessor } from "./processor.ts";
import { startRetention } from "./retention.ts";
import { startSweep } from "./sweep.ts";

const settings = settingsOrExit("aggregator", () => ({
  inputTopic: envString("INPUT_TOPIC", topicNames.alertsMatched),
  outputTopic: envString("OUTPUT_TOPIC", topicNames.notificationsReady),
  groupId: envString("GROUP_ID", "aggregator"),
  // Batches insert independently (ON CONFLICT settles overlaps), so several can wait on Postgres;
  // the lifecycle part of each is applied in the order consumed (processor.ts).
  processConcurrencyMax: envInt("PROCESS_CONCURRENCY_MAX", 3, { min: 1, max: 16 }),
  sweep: {
    // Alertmanager's defaults: resolve_timeout 5 m, repeat_interval 4 h.
    resolveTimeoutMs: envInt("RESOLVE_TIMEOUT_MS", 5 * 60_000, { min: 100, max: 7 * 86_400_000 }),
    repeatIntervalMs: envInt("REPEAT_INTERVAL_MS", 4 * 3_600_000, { min: 100, max: 30 * 86_400_000 }),
    intervalMs: envInt("SWEEP_INTERVAL_MS", 5000, { min: 50, max: 600_000 }),
    batchSizeMax: envInt("SWEEP_BATCH_SIZE_MAX", 1000, { min: 1, max: 10_000 }),
  },
  retentionDays: retentionDays(envInt("RETENTION_DAYS", 14, { min: 0, max: 3650 })),
  retention: {
    intervalMs: envInt("RETENTION_INTERVAL_MS", 60_000, { min: 50, max: 3_600_000 }),
    batchSizeMax: envInt("RETENTION_BATCH_SIZE_MAX", 1000, { min: 1, max: 10_000 }),
  },
  // What a rule with group_by gets for the settings it leaves at 0 (src/core/grouping.ts).
  groupDefaults: {
    groupWaitMs: envInt("GROUP_WAIT_MS", alertmanagerGroupDefaults.groupWaitMs, { min: 0, max: 86_400_000 }),
    groupIntervalMs: envInt("GROUP_INTERVAL_MS", alertmanagerGroupDefaults.groupIntervalMs, {
      min: 100,
      max: 86_400_000,
    }),
    groupAlertsMax: envInt("GROUP_ALERTS_MAX", alertmanagerGroupDefaults.groupAlertsMax, {
      min: 1,
      max: 1000,
    }),
  },
}));

/**
 * Twice the topics' retention (7 days) by default: a record consumed again still finds its row. No more
 * than the topics' retention is refused (a record they still hold could find its row gone); 0 keeps
 * everything.
 */
function retentionDays(days: number): number {
  if (days > 0 && days <= topicRetentionDays)
    throw new ConfigError(
      "RETENTION_DAYS",
      `must be 0 (keep everything) or above the topics' ${topicRetentionDays} days, got ${days}`,
    );
  return days;
}

await runConsumerStage({
  name: "aggregator",
  outputTopics: [settings.outputTopic],
  topic: settings.inputTopic,
  groupId: settings.groupId,
  processConcurrencyMax: settings.processConcurrencyMax,
  async createProcessor() {
    const sql = connectPostgres();
    const logger = createLogger("aggregator");
    const sweep = startSweep(sql, settings.sweep, logger.child("sweep"));
    // RETENTION_DAYS 0 keeps everything.
    const retention =
      settings.retentionDays === 0
        ? undefined
        : startRetention(
            sql,
            { retentionMs: settings.retentionDays * 86_400_000, ...settings.retention },
            logger.child("retention"),
          );
    return {
      processor: createAggregatorProcessor(sql, settings.outputTopic, settings.groupDefaults),
      async close() {
        await Promise.all([sweep.stop(), retention?.stop()]);
        await sql.end({ timeout: 2 });
      },
    };
  },
});
