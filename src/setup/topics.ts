/**
 * `alerting topics` and `./dev topics`: creates the pipeline's topics idempotently, with
 * TOPIC_PARTITIONS partitions and TOPIC_REPLICATION_FACTOR replicas each (min.insync.replicas 2 from
 * three replicas up). Existing topics are left as they are but checked: fewer replicas than requested
 * exits 1 (a broker loss would lose them), another partition count is a warning.
 */
import { Admin, KafkaError, withReplication } from "../kafka/index.ts";
import { envInt } from "../runtime/config.ts";
import { checkLibrdkafka, infraUrls } from "../runtime/env.ts";
import { createLogger, logLevelSetting, logRank } from "../runtime/log.ts";
import { settingsOrExit } from "../runtime/service.ts";
import { pipelineTopicSpecs } from "../runtime/topics.ts";
import { compareTopics } from "./topic-check.ts";

// Kafka's own error for more replicas than registered brokers.
const invalidReplicationFactor = 38;
const metadataRetriesMax = 10;
const metadataRetryPauseMs = 500;

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
    `topics: replication factor ${replicationFactor} requested: ${created.length} created${createdList}, ` +
      `${existing.length} already there`,
  );
  // The broker answering metadata may not know yet of a topic another client just created.
  let described = admin.describeTopics(existing);
  for (let retry = 0; retry < metadataRetriesMax && existing.some((name) => !described.has(name)); retry++) {
    await Bun.sleep(metadataRetryPauseMs);
    described = admin.describeTopics(existing);
  }
  for (const [name, actual] of [...described].sort(([a], [b]) => a.localeCompare(b)))
    console.log(
      `  ${name}: ${partitionCount(actual.partitions)}, replication factor ${actual.replicationFactor}`,
    );
  const existingSpecs = specs.filter((spec) => existing.includes(spec.name));
  const { underReplicated, partitionsDiffer, missing } = compareTopics(existingSpecs, described);
  for (const topic of partitionsDiffer)
    console.warn(
      `topics: warning: ${topic.name} has ${partitionCount(topic.partitions)}, ${topic.requested} requested: ` +
        `up to ${topic.partitions} instances of the stage consuming it get work`,
    );
  for (const topic of underReplicated)
    console.error(
      `topics: ${topic.name} has replication factor ${topic.replicationFactor}, ` +
        `TOPIC_REPLICATION_FACTOR asks for ${topic.requested}: Kafka cannot raise it in place; ` +
        "add replicas with kafka-reassign-partitions, or delete the topic (and its records) and run this again",
    );
  for (const name of missing)
    console.error(
      `topics: ${name} exists but is missing from the cluster's metadata (being deleted?): ` +
        "its replication factor is unchecked; run this again",
    );
  if (underReplicated.length > 0 || missing.length > 0) process.exitCode = 1;
} catch (error) {
  if (!(error instanceof KafkaError)) throw error;
  console.error(
    error.code === invalidReplicationFactor
      ? `topics: TOPIC_REPLICATION_FACTOR=${replicationFactor} needs that many brokers at ` +
          `${infraUrls.kafkaBrokers} (KAFKA_BROKERS): ${error.message}`
      : `topics: ${error.message}`,
  );
  process.exitCode = 1;
} finally {
  admin.close();
}

function partitionCount(count: number): string {
  return `${count} partition${count === 1 ? "" : "s"}`;
}
