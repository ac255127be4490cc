/** `alerting topics` and `./dev topics`: creates the pipeline's topics idempotently. */
import { Admin } from "../kafka/index.ts";
import { envInt } from "../runtime/config.ts";
import { infraUrls } from "../runtime/env.ts";
import { createLogger } from "../runtime/log.ts";
import { pipelineTopicSpecs } from "../runtime/topics.ts";

const partitions = envInt("TOPIC_PARTITIONS", 6, { min: 1, max: 1000 });
const admin = new Admin(infraUrls.kafkaBrokers, {}, createLogger("kafka.admin"));
try {
  const { created, existing } = await admin.createTopics(pipelineTopicSpecs(partitions));
  const createdList = created.length > 0 ? ` (${created.join(", ")})` : "";
  console.log(`topics: ${created.length} created${createdList}, ${existing.length} already there`);
} finally {
  admin.close();
}
