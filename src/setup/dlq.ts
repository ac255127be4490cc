/**
 * `alerting dlq list TOPIC [LIMIT]` and `alerting dlq replay TOPIC [LIMIT] [TARGET_TOPIC]`
 * (also `./dev dlq ...`): inspect a dead-letter topic, or replay it after a fix.
 */

import { listDeadLetters, replayDeadLetters } from "../adapters/dead-letters.ts";
import { Admin, Producer } from "../kafka/index.ts";
import { checkLibrdkafka, infraUrls } from "../runtime/env.ts";
import { createLogger } from "../runtime/log.ts";
import { settingsOrExit } from "../runtime/service.ts";

const [action, topic, limitText = "1000", targetTopic] = process.argv.slice(2);
const limit = Number(limitText);
if (
  (action !== "list" && action !== "replay") ||
  topic === undefined ||
  !Number.isInteger(limit) ||
  limit < 1
) {
  console.error(
    "usage: dlq list TOPIC [LIMIT] | dlq replay TOPIC [LIMIT] [TARGET_TOPIC]   (e.g. alerts.new.dlq)",
  );
  process.exit(2);
}
settingsOrExit("dlq", checkLibrdkafka);
const logger = createLogger("dlq", 30);
const admin = new Admin(infraUrls.kafkaBrokers, {}, logger);
try {
  if (action === "list") {
    const letters = await listDeadLetters(infraUrls.kafkaBrokers, admin, topic, limit, logger);
    for (const letter of letters) {
      const failedAt = Number.isFinite(letter.failedAtMs) ? new Date(letter.failedAtMs).toISOString() : "?";
      console.log(
        `${letter.partition}:${letter.offset}  ${failedAt}  ${letter.stage}  ${letter.sourceTopic}[${letter.sourcePartition}]@${letter.sourceOffset}  ${letter.reason}  (${letter.value?.byteLength ?? 0} bytes)`,
      );
    }
    console.log(`${letters.length} dead letters in ${topic}`);
  } else {
    const producer = new Producer({ brokers: infraUrls.kafkaBrokers, clientId: "dlq-replay", logger });
    try {
      const replayed = await replayDeadLetters(
        infraUrls.kafkaBrokers,
        admin,
        producer,
        topic,
        { limit, targetTopic },
        logger,
      );
      console.log(`replayed ${replayed} dead letters from ${topic}`);
    } finally {
      await producer.close();
    }
  }
} finally {
  admin.close();
}
