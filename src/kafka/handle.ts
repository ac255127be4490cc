/**
 * What producer, consumer and admin share: building a configuration, creating the rd_kafka_t handle,
 * converting topic-partition lists, and mapping librdkafka's syslog levels onto our logger.
 */
import { type Pointer, ptr, read, toArrayBuffer } from "bun:ffi";
import { ErrorCode, KafkaError } from "./errors.ts";
import {
  cString,
  HandleType,
  loadLibrdkafka,
  PartitionLayout,
  PartitionListLayout,
  rdk,
  readCString,
  readPointer,
} from "./native.ts";

export type KafkaSettings = Record<string, string | number | boolean>;

/**
 * Where the clients' and librdkafka's messages go, handed in by whoever creates a client (the stages
 * hand theirs, from src/runtime/log.ts): src/kafka depends on nothing outside itself.
 */
export interface KafkaLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const errorBufferBytes = 512;

function errorBufferText(buffer: Uint8Array): string {
  const end = buffer.indexOf(0);
  return new TextDecoder().decode(buffer.subarray(0, end < 0 ? buffer.length : end));
}

/** Creates an rd_kafka_conf_t from `settings`; a bad key or value throws naming it. */
export function buildConf(settings: KafkaSettings): Pointer {
  loadLibrdkafka();
  const conf = rdk.rd_kafka_conf_new() as Pointer;
  const errorBuffer = new Uint8Array(errorBufferBytes);
  for (const [name, value] of Object.entries(settings)) {
    const result = rdk.rd_kafka_conf_set(
      conf,
      cString(name),
      cString(String(value)),
      errorBuffer,
      errorBufferBytes,
    );
    if (result !== 0) {
      rdk.rd_kafka_conf_destroy(conf);
      throw new KafkaError(
        `config ${name}=${value}`,
        ErrorCode.invalidArgument,
        errorBufferText(errorBuffer),
      );
    }
  }
  return conf;
}

/** Creates the client handle; librdkafka takes ownership of `conf` on success only. */
export function createHandle(kind: keyof typeof HandleType, conf: Pointer): Pointer {
  const errorBuffer = new Uint8Array(errorBufferBytes);
  const handle = rdk.rd_kafka_new(HandleType[kind], conf, errorBuffer, errorBufferBytes) as Pointer | null;
  if (!handle) {
    rdk.rd_kafka_conf_destroy(conf);
    throw new KafkaError(`create ${kind}`, ErrorCode.invalidArgument, errorBufferText(errorBuffer));
  }
  return handle;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  /** The next offset to consume, i.e. the last processed offset + 1. */
  offset: number;
}

/** Builds a native list; the caller owns it and must call rd_kafka_topic_partition_list_destroy. */
export function toNativeList(partitions: readonly (TopicPartition & { offset?: number })[]): Pointer {
  const list = rdk.rd_kafka_topic_partition_list_new(Math.max(partitions.length, 1)) as Pointer;
  for (const { topic, partition, offset } of partitions) {
    const element = rdk.rd_kafka_topic_partition_list_add(list, cString(topic), partition) as Pointer;
    // Write the element's int64 offset field through a view on its 8 bytes.
    if (offset !== undefined)
      new BigInt64Array(toArrayBuffer(element, PartitionLayout.offset, 8))[0] = BigInt(offset);
  }
  return list;
}

/** Reads a native list (owned by librdkafka or by the caller) into plain objects. */
export function fromNativeList(list: Pointer | null): (TopicPartitionOffset & { errorCode: number })[] {
  if (!list) return [];
  const count = read.i32(list, PartitionListLayout.count);
  const elements = readPointer(list, PartitionListLayout.elements);
  const result: (TopicPartitionOffset & { errorCode: number })[] = [];
  if (!elements) return result;
  for (let i = 0; i < count; i++) {
    const base = i * PartitionLayout.sizeBytes;
    result.push({
      topic: readCString(read.ptr(elements, base + PartitionLayout.topic)),
      partition: read.i32(elements, base + PartitionLayout.partition),
      offset: Number(read.i64(elements, base + PartitionLayout.offset)),
      errorCode: read.i32(elements, base + PartitionLayout.err),
    });
  }
  return result;
}

/** Runs `use` with a native list and always destroys it afterwards. */
export function withNativeList<T>(
  partitions: readonly (TopicPartition & { offset?: number })[],
  use: (list: Pointer) => T,
): T {
  const list = toNativeList(partitions);
  try {
    return use(list);
  } finally {
    rdk.rd_kafka_topic_partition_list_destroy(list);
  }
}

/** Sends one RD_KAFKA_EVENT_LOG event to `logger`; `scratch` holds the three out-parameters. */
export function logEvent(logger: KafkaLogger, event: Pointer, scratch: BigUint64Array): void {
  rdk.rd_kafka_event_log(event, ptr(scratch), ptr(scratch, 8), ptr(scratch, 16));
  logAtSyslogLevel(
    logger,
    read.i32(ptr(scratch, 16), 0),
    readCString(Number(scratch[0])),
    readCString(Number(scratch[1])),
  );
}

/** Requests sent so far, by request type (Produce, Fetch, OffsetCommit, ...), over every broker. */
export type RequestCounts = Readonly<Record<string, number>>;

/** The part of librdkafka's statistics JSON that requestCountsFromStatistics reads. */
export interface BrokerStatisticsJson {
  brokers?: Record<string, { req?: Record<string, number> }>;
}

/** The request counts in a librdkafka statistics JSON (cumulative since the client started). */
export function requestCountsFromStatistics(statistics: BrokerStatisticsJson): RequestCounts {
  const counts: Record<string, number> = {};
  for (const broker of Object.values(statistics.brokers ?? {}))
    for (const [request, count] of Object.entries(broker.req ?? {}))
      if (count > 0) counts[request] = (counts[request] ?? 0) + count;
  return counts;
}

/** librdkafka logs with syslog levels 0 (emerg) .. 7 (debug). */
export function logAtSyslogLevel(
  logger: KafkaLogger,
  level: number,
  facility: string,
  message: string,
): void {
  const fields = { facility, librdkafka: true };
  if (level <= 3) logger.error(message, fields);
  else if (level === 4) logger.warn(message, fields);
  else if (level <= 6) logger.info(message, fields);
  else logger.debug(message, fields);
}

/** Address of a typed array's first byte, or 0 for an empty/absent one (C accepts NULL with size 0). */
export function addressOf(bytes: Uint8Array | null | undefined): Pointer | null {
  return bytes && bytes.byteLength > 0 ? ptr(bytes) : null;
}

/** An integer carried through librdkafka as an opaque `void *` (a batch or commit id). */
export function opaque(id: number): Pointer {
  return id as Pointer;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
