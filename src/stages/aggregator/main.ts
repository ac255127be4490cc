/** aggregator: alerts.matched -> notifications rows (deduplicated) -> notifications.ready. */
import { connectPostgres } from "../../adapters/postgres.ts";
import { envInt, envString } from "../../runtime/config.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { createAggregatorProcessor } from "./processor.ts";

await runConsumerStage({
  name: "aggregator",
  topic: envString("INPUT_TOPIC", topicNames.alertsMatched),
  groupId: envString("GROUP_ID", "aggregator"),
  // Batches insert independently (ON CONFLICT settles overlaps), so several can wait on Postgres.
  processConcurrencyMax: envInt("PROCESS_CONCURRENCY_MAX", 3, { min: 1, max: 16 }),
  async createProcessor() {
    const sql = connectPostgres();
    return {
      processor: createAggregatorProcessor(sql, envString("OUTPUT_TOPIC", topicNames.notificationsReady)),
      close: () => sql.end({ timeout: 2 }),
    };
  },
});
