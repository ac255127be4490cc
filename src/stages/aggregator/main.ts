/** aggregator: alerts.matched -> notifications rows (deduplicated) -> notifications.ready. */
import { connectPostgres } from "../../adapters/postgres.ts";
import { envString } from "../../runtime/config.ts";
import { runConsumerStage } from "../../runtime/stage.ts";
import { topicNames } from "../../runtime/topics.ts";
import { createAggregatorProcessor } from "./processor.ts";

await runConsumerStage({
  name: "aggregator",
  topic: envString("INPUT_TOPIC", topicNames.alertsMatched),
  groupId: envString("GROUP_ID", "aggregator"),
  async createProcessor() {
    const sql = connectPostgres();
    return {
      processor: createAggregatorProcessor(sql, envString("OUTPUT_TOPIC", topicNames.notificationsReady)),
      close: () => sql.end({ timeout: 2 }),
    };
  },
});
