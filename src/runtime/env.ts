/**
 * Where the shared infrastructure lives. Defaults match `./dev infra` on one machine; as with every
 * setting, an empty variable means the default.
 */
import { loadLibrdkafka } from "../kafka/index.ts";
import { ConfigError, envString } from "./config.ts";

export const infraUrls = {
  kafkaBrokers: envString("KAFKA_BROKERS", "127.0.0.1:9092"),
  postgresUrl: envString("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/alerting"),
  redisUrl: envString("REDIS_URL", "redis://127.0.0.1:6379"),
} as const;

/**
 * Loads the Kafka client's librdkafka (LIBRDKAFKA_PATH, read by src/kafka, which imports nothing
 * from here) now, so that a path that does not load is reported with the other settings.
 */
export function checkLibrdkafka(): void {
  try {
    loadLibrdkafka();
  } catch (error) {
    throw new ConfigError("LIBRDKAFKA_PATH", (error as Error).message);
  }
}
