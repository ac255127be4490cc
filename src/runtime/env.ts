/** Where the shared infrastructure lives. Defaults match `./dev infra` on one machine. */
export const infraUrls = {
  kafkaBrokers: process.env.KAFKA_BROKERS ?? "127.0.0.1:9092",
  postgresUrl: process.env.POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/alerting",
  redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
} as const;
