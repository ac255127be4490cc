/** `./dev topics`: creates the pipeline's topics idempotently with the project's own Kafka client. */
import { Admin } from "../src/kafka/index.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { pipelineTopicSpecs } from "../src/runtime/topics.ts";

const partitions = Number(process.env.TOPIC_PARTITIONS ?? 6);
if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1000) {
  console.error(`TOPIC_PARTITIONS must be an integer in 1..1000, got "${process.env.TOPIC_PARTITIONS}"`);
  process.exit(2);
}
const admin = new Admin(infraUrls.kafkaBrokers);
try {
  const { created, existing } = await admin.createTopics(pipelineTopicSpecs(partitions));
  console.log(
    `topics: ${created.length} created${created.length ? ` (${created.join(", ")})` : ""}, ${existing.length} already there`,
  );
} catch (error) {
  console.error(
    `topics: ${error instanceof Error ? error.message : String(error)} (is Kafka up? ./dev infra)`,
  );
  process.exitCode = 1;
} finally {
  admin.close();
}
