/**
 * Cluster administration: create topics idempotently, list topics with their partitions and
 * leaders, describe topics' partition counts and replication factors, read partition watermarks.
 * Used by `./dev topics`, readiness checks, chaos and tests.
 */
import { type Pointer, ptr, read } from "bun:ffi";
import { check, ErrorCode, KafkaError } from "./errors.ts";
import { buildConf, createHandle, type KafkaLogger, type KafkaSettings, logEvent } from "./handle.ts";
import {
  cString,
  EventType,
  MetadataLayout,
  MetadataPartitionLayout,
  MetadataTopicLayout,
  rdk,
  readCString,
  readPointer,
} from "./native.ts";

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor?: number;
  config?: Record<string, string>;
}

export interface TopicInfo {
  name: string;
  partitions: number[];
  /** The leader's node id of each partition, index by index; -1 while it has none. */
  leaders: number[];
}

export interface TopicDescription {
  partitions: number;
  /** The fewest replicas any of its partitions has: the weakest partition is what a broker loss costs. */
  replicationFactor: number;
}

const adminApiCreateTopics = 1;
const errorBufferBytes = 512;
// rd_kafka_metadata blocks its caller: bounded, so an unreachable cluster fails rather than hangs.
const metadataTimeoutMs = 10_000;

export class Admin {
  readonly #handle: Pointer;
  readonly #mainQueue: Pointer;
  readonly #logger: KafkaLogger;
  readonly #logOut = new BigUint64Array(3);
  #closed = false;

  constructor(brokers: string, settings: KafkaSettings, logger: KafkaLogger) {
    this.#logger = logger;
    // A producer handle is the lightest client that can run admin requests and metadata queries.
    const conf = buildConf({ "bootstrap.servers": brokers, "log.queue": true, ...settings });
    rdk.rd_kafka_conf_set_events(conf, EventType.log | EventType.error);
    this.#handle = createHandle("producer", conf);
    this.#mainQueue = rdk.rd_kafka_queue_get_main(this.#handle) as Pointer;
    check("set log queue", rdk.rd_kafka_set_log_queue(this.#handle, this.#mainQueue));
  }

  /** Routes librdkafka's logs and errors, queued since the last call, to our logger. */
  #drainLogs(): void {
    for (;;) {
      const event = rdk.rd_kafka_queue_poll(this.#mainQueue, 0) as Pointer | null;
      if (!event) return;
      if (rdk.rd_kafka_event_type(event) === EventType.log) {
        logEvent(this.#logger, event, this.#logOut);
      } else {
        this.#logger.warn("admin client error", { detail: String(rdk.rd_kafka_event_error_string(event)) });
      }
      rdk.rd_kafka_event_destroy(event);
    }
  }

  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  async createTopics(
    specs: readonly TopicSpec[],
    timeoutMs = 30_000,
  ): Promise<{ created: string[]; existing: string[] }> {
    const errorBuffer = new Uint8Array(errorBufferBytes);
    const newTopics = specs.map((spec) => {
      const topic = rdk.rd_kafka_NewTopic_new(
        cString(spec.name),
        spec.partitions,
        spec.replicationFactor ?? 1,
        errorBuffer,
        errorBufferBytes,
      ) as Pointer | null;
      if (!topic)
        throw new KafkaError(
          `new topic ${spec.name}`,
          ErrorCode.invalidArgument,
          new TextDecoder().decode(errorBuffer),
        );
      for (const [key, value] of Object.entries(spec.config ?? {})) {
        check(
          `topic ${spec.name} config ${key}`,
          rdk.rd_kafka_NewTopic_set_config(topic, cString(key), cString(value)),
        );
      }
      return topic;
    });
    const queue = rdk.rd_kafka_queue_new(this.#handle) as Pointer;
    const options = rdk.rd_kafka_AdminOptions_new(this.#handle, adminApiCreateTopics) as Pointer;
    try {
      rdk.rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, errorBuffer, errorBufferBytes);
      rdk.rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, errorBuffer, errorBufferBytes);
      const array = new BigUint64Array(newTopics.map((topic) => BigInt(topic)));
      rdk.rd_kafka_CreateTopics(this.#handle, ptr(array), newTopics.length, options, queue);
      const event = await pollQueue(
        queue,
        EventType.createTopicsResult,
        timeoutMs + 1000,
        "create topics",
        () => this.#drainLogs(),
      );
      try {
        return readCreateTopicsResult(event);
      } finally {
        rdk.rd_kafka_event_destroy(event);
      }
    } finally {
      rdk.rd_kafka_AdminOptions_destroy(options);
      rdk.rd_kafka_queue_destroy(queue);
      for (const topic of newTopics) rdk.rd_kafka_NewTopic_destroy(topic);
    }
  }

  /** Every topic in the cluster with its partition ids (a real metadata request). */
  listTopics(timeoutMs = 5000): TopicInfo[] {
    const topics: TopicInfo[] = [];
    this.#visitTopics("metadata", timeoutMs, (base, offset) => {
      if (read.i32(base, offset + MetadataTopicLayout.err) !== 0) return;
      const partitions = readPartitions(base, offset).sort((a, b) => a.id - b.id);
      topics.push({
        name: readCString(read.ptr(base, offset + MetadataTopicLayout.name)),
        partitions: partitions.map((p) => p.id),
        leaders: partitions.map((p) => p.leader),
      });
    });
    return topics.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The partition count and replication factor of each of `names` that exists; a missing topic is
   * absent from the map. A named topic whose metadata carries an error throws that error.
   */
  describeTopics(names: readonly string[], timeoutMs = metadataTimeoutMs): Map<string, TopicDescription> {
    const wanted = new Set(names);
    const described = new Map<string, TopicDescription>();
    this.#visitTopics("describe topics", timeoutMs, (base, offset) => {
      const name = readCString(read.ptr(base, offset + MetadataTopicLayout.name));
      if (!wanted.has(name)) return;
      const code = read.i32(base, offset + MetadataTopicLayout.err);
      if (code === ErrorCode.unknownTopicOrPartition) return;
      check(`describe topic ${name}`, code);
      const partitions = readPartitions(base, offset);
      described.set(name, {
        partitions: partitions.length,
        replicationFactor: partitions.length === 0 ? 0 : Math.min(...partitions.map((p) => p.replicaCount)),
      });
    });
    return described;
  }

  /**
   * Requests the metadata of every topic and calls `visit` with each topic struct (array base and
   * byte offset). Every topic, not just the wanted ones: a request naming a topic lets the broker
   * auto-create it (allow.auto.create.topics defaults to true on a producer handle), and a missing
   * topic must be reported, not made. The metadata is freed before this returns, also when `visit`
   * throws, so `visit` copies what it keeps and no pointer outlives it.
   */
  #visitTopics(operation: string, timeoutMs: number, visit: (base: Pointer, offset: number) => void): void {
    const out = new BigUint64Array(1);
    const code = rdk.rd_kafka_metadata(this.#handle, 1, null, ptr(out), timeoutMs);
    this.#drainLogs();
    const metadata = Number(out[0]) as Pointer;
    try {
      check(operation, code);
      const count = read.i32(metadata, MetadataLayout.topicCount);
      const base = readPointer(metadata, MetadataLayout.topics);
      for (let i = 0; i < count && base; i++) visit(base, i * MetadataTopicLayout.sizeBytes);
    } finally {
      // librdkafka sets the result only on success; freeing whatever it set holds whatever the code.
      if (metadata) rdk.rd_kafka_metadata_destroy(metadata);
    }
  }

  /** Low and high watermark of one partition: high - low records are retained. */
  watermarks(topic: string, partition: number, timeoutMs = 5000): { low: number; high: number } {
    const out = new BigInt64Array(2);
    check(
      `watermarks ${topic}[${partition}]`,
      rdk.rd_kafka_query_watermark_offsets(
        this.#handle,
        cString(topic),
        partition,
        ptr(out),
        ptr(out, 8),
        timeoutMs,
      ),
    );
    return { low: Number(out[0]), high: Number(out[1]) };
  }

  /** Sum of high watermarks over a topic's partitions: records ever written, when nothing expired. */
  endOffsetTotal(topic: string, timeoutMs = 5000): number {
    const info = this.listTopics(timeoutMs).find((t) => t.name === topic);
    if (!info) throw new KafkaError(`topic ${topic}`, ErrorCode.unknownTopicOrPartition, "no such topic");
    return info.partitions.reduce((sum, p) => sum + this.watermarks(topic, p, timeoutMs).high, 0);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#drainLogs();
    rdk.rd_kafka_queue_destroy(this.#mainQueue);
    rdk.rd_kafka_destroy(this.#handle);
  }
}

async function pollQueue(
  queue: Pointer,
  type: number,
  timeoutMs: number,
  operation: string,
  onIdle: () => void,
): Promise<Pointer> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    onIdle();
    const event = rdk.rd_kafka_queue_poll(queue, 0) as Pointer | null;
    if (event) {
      if (rdk.rd_kafka_event_type(event) === type) return event;
      rdk.rd_kafka_event_destroy(event);
      continue;
    }
    await Bun.sleep(5);
  }
  throw new KafkaError(operation, ErrorCode.timedOut, `no result within ${timeoutMs} ms`);
}

/** The partitions of the topic struct at `base + offset`, in the broker's order. */
function readPartitions(
  base: Pointer,
  offset: number,
): { id: number; leader: number; replicaCount: number }[] {
  const count = read.i32(base, offset + MetadataTopicLayout.partitionCount);
  const partitionBase = read.ptr(base, offset + MetadataTopicLayout.partitions) as Pointer;
  const partitions: { id: number; leader: number; replicaCount: number }[] = [];
  for (let j = 0; j < count; j++) {
    const partitionOffset = j * MetadataPartitionLayout.sizeBytes;
    partitions.push({
      id: read.i32(partitionBase, partitionOffset + MetadataPartitionLayout.id),
      leader: read.i32(partitionBase, partitionOffset + MetadataPartitionLayout.leader),
      replicaCount: read.i32(partitionBase, partitionOffset + MetadataPartitionLayout.replicaCount),
    });
  }
  return partitions;
}

function readCreateTopicsResult(event: Pointer): { created: string[]; existing: string[] } {
  const eventError = rdk.rd_kafka_event_error(event);
  if (eventError !== 0)
    throw new KafkaError("create topics", eventError, String(rdk.rd_kafka_event_error_string(event)));
  const result = rdk.rd_kafka_event_CreateTopics_result(event) as Pointer;
  const count = new BigUint64Array(1);
  const topics = rdk.rd_kafka_CreateTopics_result_topics(result, ptr(count)) as Pointer;
  const created: string[] = [];
  const existing: string[] = [];
  for (let i = 0; i < Number(count[0]); i++) {
    const topicResult = read.ptr(topics, i * 8) as Pointer;
    const name = String(rdk.rd_kafka_topic_result_name(topicResult));
    const code = rdk.rd_kafka_topic_result_error(topicResult);
    if (code === ErrorCode.noError) created.push(name);
    else if (code === ErrorCode.topicAlreadyExists) existing.push(name);
    else
      throw new KafkaError(
        `create topic ${name}`,
        code,
        String(rdk.rd_kafka_topic_result_error_string(topicResult)),
      );
  }
  return { created, existing };
}
