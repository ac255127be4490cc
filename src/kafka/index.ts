/** The project's Kafka client: librdkafka through bun:ffi. This is its whole public surface. */
export { Admin, type TopicDescription, type TopicInfo, type TopicSpec } from "./admin.ts";
export {
  type CommitOffset,
  type ConsumedRecord,
  Consumer,
  type ConsumerOptions,
  consumerSessionTimeoutMs,
  type PartitionLag,
  type RebalanceListener,
} from "./consumer.ts";
export { isRetryable, KafkaError } from "./errors.ts";
export type { KafkaLogger, KafkaSettings, TopicPartition, TopicPartitionOffset } from "./handle.ts";
export { loadLibrdkafka } from "./native.ts";
export { type Headers, type ProduceRecord, Producer, type ProducerOptions } from "./producer.ts";
export { minInsyncReplicas, withReplication } from "./replication.ts";
