/**
 * `alerting topics` and `./dev topics`: creates the pipeline's topics idempotently, with
 * TOPIC_PARTITIONS partitions and TOPIC_REPLICATION_FACTOR replicas each (min.insync.replicas 2 from
 * three replicas up). Existing topics are left as they are.
 */
import { Admin, KafkaError, withReplication } from "../kafka/index.ts";
import { envInt } from "../runtime/config.ts";
import { checkLibrdkafka, infraUrls } from "../runtime/env.ts";
import { createLogger, logLevelSetting, logRank } from "../runtime/log.ts";
import { settingsOrExit } from "../runtime/service.ts";
import { pipelineTopicSpecs } from "../runtime/topics.ts";

// Kafka's own error for more replicas than registered brokers.
const invalidReplicationFactor = 38;

/** Every setting is read before anything connects, so a bad one exits 2 naming it. */
const settings = settingsOrExit("topics", () => {
  checkLibrdkafka();
  return {
    logRank: logRank[logLevelSetting()],
    partitions: envInt("TOPIC_PARTITIONS", 6, { min: 1, max: 1000 }),
    replicationFactor: envInt("TOPIC_REPLICATION_FACTOR", 1, { min: 1, max: 16 }),
  };
});
const { partitions, replicationFactor } = settings;
const admin = new Admin(infraUrls.kafkaBrokers, {}, createLogger("kafka.admin", settings.logRank));
try {
  const specs = withReplication(pipelineTopicSpecs(partitions), replicationFactor);
  const { created, existing } = await admin.createTopics(specs);
  const createdList = created.length > 0 ? ` (${created.join(", ")})` : "";
  console.log(
    `topics: ${created.length} created${createdList}, ${existing.length} already there ` +
      `(replication factor ${replicationFactor})`,
  );
} catch (error) {
  if (!(error instanceof KafkaError && error.code === invalidReplicationFactor)) throw error;
  console.error(
    `topics: TOPIC_REPLICATION_FACTOR=${replicationFactor} needs that many brokers at ` +
      `${infraUrls.kafkaBrokers} (KAFKA_BROKERS): ${error.message}`,
  );
  process.exitCode = 1;
} finally {
  admin.close();
}
