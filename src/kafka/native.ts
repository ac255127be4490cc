/**
 * The librdkafka C API as seen through bun:ffi: the symbol table, the struct layouts we read, and
 * small helpers for C strings. Everything else in src/kafka builds on this file; nothing outside
 * src/kafka imports it.
 *
 * The library is the system's librdkafka (Debian `librdkafka1`); LIBRDKAFKA_PATH may point at
 * another build. Struct offsets below are for the x86_64/aarch64 LP64 ABI of librdkafka 2.x.
 */
import { CString, dlopen, type Library, type Pointer, read } from "bun:ffi";

const p = "ptr" as const;
const i32 = "i32" as const;
const usize = "usize" as const;

const symbols = {
  rd_kafka_err2name: { args: [i32], returns: "cstring" },
  rd_kafka_err2str: { args: [i32], returns: "cstring" },

  rd_kafka_conf_new: { args: [], returns: p },
  rd_kafka_conf_set: { args: [p, p, p, p, usize], returns: i32 },
  rd_kafka_conf_destroy: { args: [p], returns: "void" },
  rd_kafka_conf_set_events: { args: [p, i32], returns: "void" },
  rd_kafka_conf_set_rebalance_cb: { args: [p, p], returns: "void" },
  rd_kafka_conf_set_error_cb: { args: [p, p], returns: "void" },
  rd_kafka_conf_set_log_cb: { args: [p, p], returns: "void" },
  rd_kafka_conf_set_stats_cb: { args: [p, p], returns: "void" },

  rd_kafka_new: { args: [i32, p, p, usize], returns: p },
  rd_kafka_destroy: { args: [p], returns: "void" },
  rd_kafka_outq_len: { args: [p], returns: i32 },
  rd_kafka_set_log_queue: { args: [p, p], returns: i32 },

  rd_kafka_queue_get_main: { args: [p], returns: p },
  rd_kafka_queue_get_consumer: { args: [p], returns: p },
  rd_kafka_queue_new: { args: [p], returns: p },
  rd_kafka_queue_destroy: { args: [p], returns: "void" },
  rd_kafka_queue_poll: { args: [p, i32], returns: p },
  rd_kafka_queue_io_event_enable: { args: [p, i32, p, usize], returns: "void" },

  rd_kafka_event_type: { args: [p], returns: i32 },
  rd_kafka_event_destroy: { args: [p], returns: "void" },
  rd_kafka_event_message_array: { args: [p, p, usize], returns: usize },
  rd_kafka_event_error: { args: [p], returns: i32 },
  rd_kafka_event_error_string: { args: [p], returns: "cstring" },
  rd_kafka_event_error_is_fatal: { args: [p], returns: i32 },
  rd_kafka_event_log: { args: [p, p, p, p], returns: i32 },
  rd_kafka_event_topic_partition_list: { args: [p], returns: p },
  rd_kafka_event_opaque: { args: [p], returns: p },
  rd_kafka_event_stats: { args: [p], returns: "cstring" },
  rd_kafka_event_CreateTopics_result: { args: [p], returns: p },
  rd_kafka_CreateTopics_result_topics: { args: [p, p], returns: p },
  rd_kafka_topic_result_error: { args: [p], returns: i32 },
  rd_kafka_topic_result_error_string: { args: [p], returns: "cstring" },
  rd_kafka_topic_result_name: { args: [p], returns: "cstring" },

  rd_kafka_topic_new: { args: [p, p, p], returns: p },
  rd_kafka_topic_destroy: { args: [p], returns: "void" },
  rd_kafka_topic_name: { args: [p], returns: "cstring" },
  rd_kafka_produce: { args: [p, i32, i32, p, usize, p, usize, p], returns: i32 },
  rd_kafka_produceva: { args: [p, p, usize], returns: p },
  rd_kafka_last_error: { args: [], returns: i32 },
  rd_kafka_error_code: { args: [p], returns: i32 },
  rd_kafka_error_destroy: { args: [p], returns: "void" },

  rd_kafka_poll_set_consumer: { args: [p], returns: i32 },
  rd_kafka_subscribe: { args: [p, p], returns: i32 },
  rd_kafka_consume_batch_queue: { args: [p, i32, p, usize], returns: "i64" },
  rd_kafka_queue_length: { args: [p], returns: "usize" },
  rd_kafka_message_destroy: { args: [p], returns: "void" },
  rd_kafka_message_headers: { args: [p, p], returns: i32 },
  rd_kafka_header_get_all: { args: [p, usize, p, p, p], returns: i32 },
  rd_kafka_message_timestamp: { args: [p, p], returns: "i64" },
  rd_kafka_commit: { args: [p, p, i32], returns: i32 },
  rd_kafka_commit_queue: { args: [p, p, p, p, p], returns: i32 },
  rd_kafka_committed: { args: [p, p, i32], returns: i32 },
  rd_kafka_consumer_close: { args: [p], returns: i32 },
  rd_kafka_assign: { args: [p, p], returns: i32 },
  rd_kafka_incremental_assign: { args: [p, p], returns: p },
  rd_kafka_incremental_unassign: { args: [p, p], returns: p },
  rd_kafka_rebalance_protocol: { args: [p], returns: "cstring" },
  rd_kafka_query_watermark_offsets: { args: [p, p, i32, p, p, i32], returns: i32 },

  rd_kafka_topic_partition_list_new: { args: [i32], returns: p },
  rd_kafka_topic_partition_list_add: { args: [p, p, i32], returns: p },
  rd_kafka_topic_partition_list_destroy: { args: [p], returns: "void" },

  rd_kafka_NewTopic_new: { args: [p, i32, i32, p, usize], returns: p },
  rd_kafka_NewTopic_set_config: { args: [p, p, p], returns: i32 },
  rd_kafka_NewTopic_destroy: { args: [p], returns: "void" },
  rd_kafka_CreateTopics: { args: [p, p, usize, p, p], returns: "void" },
  rd_kafka_AdminOptions_new: { args: [p, i32], returns: p },
  rd_kafka_AdminOptions_set_operation_timeout: { args: [p, i32, p, usize], returns: i32 },
  rd_kafka_AdminOptions_set_request_timeout: { args: [p, i32, p, usize], returns: i32 },
  rd_kafka_AdminOptions_destroy: { args: [p], returns: "void" },
  rd_kafka_metadata: { args: [p, i32, p, p, i32], returns: i32 },
  rd_kafka_metadata_destroy: { args: [p], returns: "void" },
} as const;

/**
 * librdkafka's functions, once loadLibrdkafka has run. Every client loads it before its first call
 * (buildConf), so only a process that wants a bad LIBRDKAFKA_PATH reported with its other settings
 * calls loadLibrdkafka itself; loading at import would fail before any setting is checked.
 */
export let rdk: Library<typeof symbols>["symbols"];
let loaded = false;

/** Loads librdkafka once: LIBRDKAFKA_PATH when set and not empty, else the system's. */
export function loadLibrdkafka(): void {
  if (loaded) return;
  const path = process.env.LIBRDKAFKA_PATH || "librdkafka.so.1";
  try {
    rdk = dlopen(path, symbols).symbols;
  } catch (error) {
    throw new Error(
      `cannot load librdkafka from "${path}": install Debian's librdkafka1 (./dev does) or set LIBRDKAFKA_PATH (${String(error)})`,
    );
  }
  loaded = true;
}

/**
 * memcpy, to copy native payloads into JS memory without a temporary ArrayBuffer per record;
 * socketpair and close for the sockets librdkafka wakes us through (wakeup.ts).
 */
export const libc = dlopen("libc.so.6", {
  memcpy: { args: ["ptr", "ptr", "usize"], returns: "ptr" },
  socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
}).symbols;

export const HandleType = { producer: 0, consumer: 1 } as const;

export const EventType = {
  none: 0,
  deliveryReport: 0x1,
  log: 0x4,
  error: 0x8,
  offsetCommit: 0x20,
  stats: 0x40,
  createTopicsResult: 100,
} as const;

export const MessageFlags = { copy: 0x2 } as const;
export const PartitionUnassigned = -1;

/** rd_kafka_vtype_t values used with rd_kafka_produceva. */
export const VType = { topic: 1, partition: 3, value: 4, key: 5, opaque: 6, msgflags: 7, header: 9 } as const;
/** sizeof(rd_kafka_vu_t): a 4-byte tag padded to 8, then a 64-byte union. */
export const vuSizeBytes = 72;

/** rd_kafka_message_t field offsets. */
export const MessageLayout = {
  err: 0,
  topic: 8,
  partition: 16,
  payload: 24,
  len: 32,
  key: 40,
  keyLen: 48,
  offset: 56,
  opaque: 64,
} as const;

/** rd_kafka_topic_partition_t (64 bytes) and rd_kafka_topic_partition_list_t offsets. */
export const PartitionLayout = { topic: 0, partition: 8, offset: 16, err: 48, sizeBytes: 64 } as const;
export const PartitionListLayout = { count: 0, elements: 8 } as const;

/** rd_kafka_metadata_t, rd_kafka_metadata_topic_t (32 bytes), rd_kafka_metadata_partition_t (40 bytes). */
export const MetadataLayout = { topicCount: 16, topics: 24 } as const;
export const MetadataTopicLayout = {
  name: 0,
  partitionCount: 8,
  partitions: 16,
  err: 24,
  sizeBytes: 32,
} as const;
export const MetadataPartitionLayout = { id: 0, err: 4, leader: 8, replicaCount: 12, sizeBytes: 40 } as const;

const utf8 = new TextEncoder();

/** A NUL-terminated copy of `text`, to pass where C wants `const char *`. */
export function cString(text: string): Uint8Array {
  const bytes = new Uint8Array(utf8.encode(text).length + 1);
  utf8.encodeInto(text, bytes);
  return bytes;
}

export function readCString(address: Pointer | number | null): string {
  return address ? new CString(address as Pointer).toString() : "";
}

/** Reads the pointer stored at `address + offset` (a C `void *` field). */
export function readPointer(address: Pointer, offset: number): Pointer | null {
  return read.ptr(address, offset) as Pointer | null;
}

export function errorName(code: number): string {
  loadLibrdkafka();
  return String(rdk.rd_kafka_err2name(code));
}

export function errorText(code: number): string {
  loadLibrdkafka();
  return String(rdk.rd_kafka_err2str(code));
}
