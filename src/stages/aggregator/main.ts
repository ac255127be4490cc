/** aggregator: alerts.matched -> notifications rows (deduplicated) -> notifications.ready. */
import { connectPostgres } from "../../adapters/postgres.ts";
import { envInt, envString } from "../../runtime/config.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { createAggregatorProcessor } from "./processor.ts";

const outputTopic = envString("OUTPUT_TOPIC", topicNames.notificationsReady);

await runConsumerStage({
  name: "aggregator",
  outputTopics: [outputTopic],
  topic: envString("INPUT_TOPIC", topicNames.alertsMatched),
  groupId: envString("GROUP_ID", "aggregator"),
  // Batches insert independently (ON CONFLICT settles overlaps), so several can wait on Postgres.
  processConcurrencyMax: envInt("PROCESS_CONCURRENCY_MAX", 3, { min: 1, max: 16 }),
  async createProcessor() {
    const sql = connectPostgres();
    return {
      processor: createAggregatorProcessor(sql, outputTopic),
      close: () => sql.end({ timeout: 2 }),
    };
  },
});
