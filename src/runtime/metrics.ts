import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * The metrics every stage exposes on /metrics. Each stage process owns one registry (not the
 * global one), so several stages can run in one test process without clashing.
 */
export function createStageMetrics(stage: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ stage });
  return {
    registry,
    consumed: new Counter({
      name: "records_consumed_total",
      help: "Records consumed",
      labelNames: ["topic"],
      registers: [registry],
    }),
    produced: new Counter({
      name: "records_produced_total",
      help: "Records produced and acknowledged",
      labelNames: ["topic"],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: "records_dead_lettered_total",
      // `invalid` (refused at decode or by the processor) or `postgres_<SQLSTATE class>` (refused by the
      // database): a closed set, unlike field names, which can come from a record's context keys.
      help: "Records sent to a dead-letter topic, by reason class",
      labelNames: ["reason"],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: "batch_duration_seconds",
      help: "Consume to acknowledged output, per batch",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commits: new Counter({
      name: "offset_commits_total",
      help: "Offset commits",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    lag: new Gauge({
      name: "consumer_lag",
      help: "Records behind the end of the partition",
      labelNames: ["topic", "partition"],
      registers: [registry],
    }),
    kafkaRequests: new Gauge({
      name: "kafka_requests_sent",
      help: "Requests the stage's Kafka clients sent since they started, by client and request type (librdkafka statistics)",
      labelNames: ["client", "request"],
      registers: [registry],
    }),
    ready: new Gauge({
      name: "stage_ready",
      help: "1 when the stage is ready to process",
      registers: [registry],
    }),
  };
}

export type StageMetrics = ReturnType<typeof createStageMetrics>;
