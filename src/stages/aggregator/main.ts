/** aggregator: alerts.matched -> notifications rows (deduplicated) -> notifications.ready. */
import { connectPostgres } from "../../adapters/postgres.ts";
import { envInt, envString } from "../../runtime/config.ts";
import { settingsOrExit } from "../../runtime/service.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { createAggregatorProcessor } from "./processor.ts";

const settings = settingsOrExit("aggregator", () => ({
  inputTopic: envString("INPUT_TOPIC", topicNames.alertsMatched),
  outputTopic: envString("OUTPUT_TOPIC", topicNames.notificationsReady),
  groupId: envString("GROUP_ID", "aggregator"),
  // Batches insert independently (ON CONFLICT settles overlaps), so several can wait on Postgres.
  processConcurrencyMax: envInt("PROCESS_CONCURRENCY_MAX", 3, { min: 1, max: 16 }),
}));

await runConsumerStage({
  name: "aggregator",
  outputTopics: [settings.outputTopic],
  topic: settings.inputTopic,
  groupId: settings.groupId,
  processConcurrencyMax: settings.processConcurrencyMax,
  async createProcessor() {
    const sql = connectPostgres();
    return {
      processor: createAggregatorProcessor(sql, settings.outputTopic),
      close: () => sql.end({ timeout: 2 }),
    };
  },
});
