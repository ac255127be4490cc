/**
 * An idempotent producer (acks=all) whose unit of work is a batch: `send(records)` resolves once the
 * broker acknowledged every record of the batch, or rejects with the first KafkaError.
 *
 * Threads: librdkafka's delivery reports, errors and logs are consumed through the
 * events API from the main queue, served on the JS thread whenever librdkafka signals that queue
 * (wakeup.ts): nothing is polled on a timer. No JS function is ever handed to librdkafka, so
 * nothing runs on librdkafka's threads.
 */
import { type Pointer, ptr, read } from "bun:ffi";
import { check, ErrorCode, KafkaError } from "./errors.ts";
import {
  addressOf,
  buildConf,
  createHandle,
  type KafkaLogger,
  type KafkaSettings,
  logEvent,
  opaque,
  type RequestCounts,
  requestCountsFromStatistics,
} from "./handle.ts";
import {
  cString,
  EventType,
  MessageFlags,
  MessageLayout,
  PartitionUnassigned,
  rdk,
  VType,
  vuSizeBytes,
} from "./native.ts";
import { QueueWakeup } from "./wakeup.ts";

export type Headers = Record<string, string | Uint8Array>;

export interface ProduceRecord {
  topic: string;
  key?: Uint8Array | string | null;
  value: Uint8Array | null;
  headers?: Headers;
  /** Explicit partition; by default the key's murmur2 hash picks it (same as the Java client). */
  partition?: number;
}

export interface ProducerOptions {
  brokers: string;
  clientId?: string;
  logger: KafkaLogger;
  /** Extra librdkafka settings, applied last. */
  settings?: KafkaSettings;
  /** How long a record may wait for acknowledgement before its batch fails (message.timeout.ms). */
  deliveryTimeoutMs?: number;
  /** How often librdkafka's statistics (requestCounts) are refreshed; 0 never. */
  statisticsIntervalMs?: number;
}

interface PendingBatch {
  unacknowledged: number;
  error: KafkaError | undefined;
  resolve: () => void;
  reject: (error: KafkaError) => void;
}

const eventsPerPollMax = 1000;
/**
 * How long after librdkafka signals its queue the events are served. A batch goes out as one produce
 * request per partition, acknowledged within about this long of one another: served together, their
 * delivery reports cost one wake of this thread instead of one each (librdkafka signals the queue
 * again only once it was served). It delays acknowledgements, not records.
 */
const reportGatherMs = 2;
const reportsPerEventMax = 10_000;
/** How long `send` waits before retrying a record refused because librdkafka's queue is full. */
const queueFullWaitMs = 1;
const headerCountMax = 64;
const headerNamesCachedMax = 1024;

const utf8 = new TextEncoder();

function asBytes(value: Uint8Array | string | null | undefined): Uint8Array | null {
  if (value === null || value === undefined) return null;
  return typeof value === "string" ? utf8.encode(value) : value;
}

export class Producer {
  readonly #handle: Pointer;
  readonly #mainQueue: Pointer;
  readonly #logger: KafkaLogger;
  readonly #topics = new Map<string, Pointer>();
  readonly #pending = new Map<number, PendingBatch>();
  readonly #reportPointers = new BigUint64Array(reportsPerEventMax);
  readonly #logOut = new BigUint64Array(3);
  #vus = new Uint8Array(vuSizeBytes * 8);
  #nextBatchId = 1;
  readonly #wakeup: QueueWakeup;
  #serveAgain: ReturnType<typeof setImmediate> | undefined;
  #serveSoon: ReturnType<typeof setTimeout> | undefined;
  #fatal: KafkaError | undefined;
  #closed = false;
  #requests: RequestCounts = {};

  constructor(options: ProducerOptions) {
    this.#logger = options.logger;
    const conf = buildConf({
      "bootstrap.servers": options.brokers,
      "client.id": options.clientId ?? "alerting",
      "enable.idempotence": true,
      acks: "all",
      "linger.ms": 5,
      "batch.num.messages": 10_000,
      "queue.buffering.max.messages": 200_000,
      // Topics decide the real limit (max.message.bytes); the client must not be the smaller one.
      "message.max.bytes": 4 * 1024 * 1024,
      "message.timeout.ms": options.deliveryTimeoutMs ?? 30_000,
      partitioner: "murmur2_random",
      "statistics.interval.ms": options.statisticsIntervalMs ?? 0,
      // Requests are small and latency-bound: Nagle would hold one back while another is unacknowledged.
      "socket.nagle.disable": true,
      "log.queue": true,
      ...options.settings,
    });
    rdk.rd_kafka_conf_set_events(
      conf,
      EventType.deliveryReport | EventType.error | EventType.log | EventType.stats,
    );
    this.#handle = createHandle("producer", conf);
    this.#mainQueue = rdk.rd_kafka_queue_get_main(this.#handle) as Pointer;
    check("set log queue", rdk.rd_kafka_set_log_queue(this.#handle, this.#mainQueue));
    this.#wakeup = new QueueWakeup(() => {
      this.#serveSoon ??= setTimeout(() => {
        this.#serveSoon = undefined;
        if (!this.#closed) this.#serveEvents();
      }, reportGatherMs);
    });
    this.#wakeup.watch(this.#mainQueue);
    // What was enqueued before the watch (a first connection error) signals nothing: serve it now.
    this.#serveEvents();
  }

  /** Sends `records` and resolves when every one is acknowledged by all in-sync replicas. */
  send(records: readonly ProduceRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new KafkaError("send", ErrorCode.state, "producer is closed"));
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (records.length === 0) return Promise.resolve();
    const batchId = this.#nextBatchId++;
    return new Promise<void>((resolve, reject) => {
      const batch: PendingBatch = { unacknowledged: 0, error: undefined, resolve, reject };
      this.#pending.set(batchId, batch);
      void this.#enqueueAll(batchId, batch, records);
    });
  }

  async #enqueueAll(batchId: number, batch: PendingBatch, records: readonly ProduceRecord[]): Promise<void> {
    // Early acknowledgements must not settle the batch while later records are still being enqueued.
    this.#enqueuing.add(batchId);
    for (const record of records) {
      for (;;) {
        const code = this.#enqueue(record, batchId);
        if (code === ErrorCode.noError) {
          batch.unacknowledged++;
          break;
        }
        if (code !== ErrorCode.queueFull) {
          batch.error ??= new KafkaError(`produce to ${record.topic}`, code);
          break;
        }
        // librdkafka's local queue is full: let delivery reports drain it, then retry this record.
        this.#serveEvents();
        await Bun.sleep(queueFullWaitMs);
        if (this.#fatal || this.#closed) {
          batch.error ??=
            this.#fatal ?? new KafkaError("send", ErrorCode.state, "producer closed while sending");
          break;
        }
      }
      if (batch.error) break;
    }
    this.#enqueuing.delete(batchId);
    this.#settleIfDone(batchId, batch);
  }

  #enqueue(record: ProduceRecord, batchId: number): number {
    const value = record.value;
    const key = asBytes(record.key);
    const partition = record.partition ?? PartitionUnassigned;
    if (record.headers === undefined) {
      const result = rdk.rd_kafka_produce(
        this.#topicHandle(record.topic),
        partition,
        MessageFlags.copy,
        addressOf(value),
        value?.byteLength ?? 0,
        addressOf(key),
        key?.byteLength ?? 0,
        opaque(batchId),
      );
      return result === 0 ? ErrorCode.noError : rdk.rd_kafka_last_error();
    }
    return this.#enqueueWithHeaders(record, key, partition, batchId);
  }

  /** rd_kafka_produceva takes an array of tagged unions; we fill it in a reusable buffer. */
  #enqueueWithHeaders(
    record: ProduceRecord,
    key: Uint8Array | null,
    partition: number,
    batchId: number,
  ): number {
    const headers = Object.entries(record.headers ?? {});
    if (headers.length > headerCountMax)
      throw new KafkaError("produce", ErrorCode.invalidArgument, `more than ${headerCountMax} headers`);
    const slots = 6 + headers.length;
    if (this.#vus.byteLength < slots * vuSizeBytes) this.#vus = new Uint8Array(slots * vuSizeBytes);
    const view = new DataView(this.#vus.buffer);
    const keepAlive: Uint8Array[] = [];
    const pointerOf = (bytes: Uint8Array | null) => {
      if (bytes) keepAlive.push(bytes);
      return addressOf(bytes) ?? 0;
    };
    let slot = 0;
    const put = (type: number, first: number, second?: number, third?: number) => {
      const base = slot++ * vuSizeBytes;
      view.setInt32(base, type, true);
      writeWord(view, base + 8, first);
      if (second !== undefined) writeWord(view, base + 16, second);
      if (third !== undefined) writeWord(view, base + 24, third);
    };
    put(VType.topic, pointerOf(this.#topicName(record.topic)));
    view.setInt32(slot * vuSizeBytes, VType.partition, true);
    view.setInt32(slot * vuSizeBytes + 8, partition, true);
    slot++;
    put(VType.value, pointerOf(record.value), record.value?.byteLength ?? 0);
    put(VType.key, pointerOf(key), key?.byteLength ?? 0);
    put(VType.opaque, batchId);
    view.setInt32(slot * vuSizeBytes, VType.msgflags, true);
    view.setInt32(slot * vuSizeBytes + 8, MessageFlags.copy, true);
    slot++;
    for (const [name, value] of headers) {
      const bytes = asBytes(value) ?? new Uint8Array(0);
      put(VType.header, pointerOf(this.#headerName(name)), pointerOf(bytes), bytes.byteLength);
    }
    const error = rdk.rd_kafka_produceva(this.#handle, ptr(this.#vus), slot) as Pointer | null;
    keepAlive.length = 0;
    if (!error) return ErrorCode.noError;
    const code = rdk.rd_kafka_error_code(error);
    rdk.rd_kafka_error_destroy(error);
    return code;
  }

  /**
   * Looks `topics` up now rather than at their first record: a topic's first produce otherwise
   * waits for its metadata, stalling that batch (a stage's first dead letter, say) for up to a second.
   */
  prepareTopics(topics: readonly string[]): void {
    for (const topic of topics) this.#topicHandle(topic);
  }

  /** Header names repeat (dead-letter headers on every record), so their C strings are kept; bounded. */
  readonly #headerNames = new Map<string, Uint8Array>();
  #headerName(name: string): Uint8Array {
    let bytes = this.#headerNames.get(name);
    if (!bytes) {
      bytes = cString(name);
      if (this.#headerNames.size < headerNamesCachedMax) this.#headerNames.set(name, bytes);
    }
    return bytes;
  }

  readonly #topicNames = new Map<string, Uint8Array>();
  #topicName(topic: string): Uint8Array {
    let name = this.#topicNames.get(topic);
    if (!name) {
      name = cString(topic);
      this.#topicNames.set(topic, name);
    }
    return name;
  }

  #topicHandle(topic: string): Pointer {
    let handle = this.#topics.get(topic);
    if (!handle) {
      handle =
        (rdk.rd_kafka_topic_new(this.#handle, this.#topicName(topic), null) as Pointer | null) ?? undefined;
      if (!handle) throw new KafkaError(`topic handle ${topic}`, rdk.rd_kafka_last_error());
      this.#topics.set(topic, handle);
    }
    return handle;
  }

  /**
   * Drains the main queue without blocking: delivery reports, errors, logs. librdkafka signals the
   * queue again only once it was emptied, so a drain cut short by the bound goes on in the next turn
   * of the event loop.
   */
  #serveEvents(): void {
    for (let served = 0; served < eventsPerPollMax; served++) {
      const event = rdk.rd_kafka_queue_poll(this.#mainQueue, 0) as Pointer | null;
      if (!event) return;
      try {
        this.#handleEvent(event);
      } finally {
        rdk.rd_kafka_event_destroy(event);
      }
    }
    this.#serveAgain ??= setImmediate(() => {
      this.#serveAgain = undefined;
      if (!this.#closed) this.#serveEvents();
    });
  }

  #handleEvent(event: Pointer): void {
    switch (rdk.rd_kafka_event_type(event)) {
      case EventType.deliveryReport:
        this.#handleDeliveryReports(event);
        break;
      case EventType.error: {
        const code = rdk.rd_kafka_event_error(event);
        const detail = String(rdk.rd_kafka_event_error_string(event));
        if (rdk.rd_kafka_event_error_is_fatal(event)) {
          // The idempotent producer cannot continue safely: fail everything, the stage restarts.
          // librdkafka raises it as _FATAL, the underlying error in the text.
          this.#fatal = new KafkaError("producer fatal error", ErrorCode.fatal, detail);
          this.#logger.error("fatal producer error", { error: this.#fatal });
          for (const [batchId, batch] of this.#pending) {
            batch.error ??= this.#fatal;
            this.#pending.delete(batchId);
            batch.reject(batch.error);
          }
        } else {
          this.#logger.warn("producer error", { code, detail });
        }
        break;
      }
      case EventType.log: {
        logEvent(this.#logger, event, this.#logOut);
        break;
      }
      case EventType.stats:
        this.#requests = requestCountsFromStatistics(JSON.parse(String(rdk.rd_kafka_event_stats(event))));
        break;
    }
  }

  #handleDeliveryReports(event: Pointer): void {
    const pointers = this.#reportPointers;
    const count = Number(rdk.rd_kafka_event_message_array(event, ptr(pointers), pointers.length));
    for (let i = 0; i < count; i++) {
      const message = Number(pointers[i]) as Pointer;
      const batchId = read.ptr(message, MessageLayout.opaque);
      const batch = this.#pending.get(batchId);
      if (!batch) continue;
      const code = read.i32(message, MessageLayout.err);
      if (code !== ErrorCode.noError) batch.error ??= new KafkaError("delivery", code);
      batch.unacknowledged--;
      this.#settleIfDone(batchId, batch);
    }
  }

  readonly #enqueuing = new Set<number>();
  #settleIfDone(batchId: number, batch: PendingBatch): void {
    if (batch.unacknowledged > 0 || this.#enqueuing.has(batchId)) return;
    this.#pending.delete(batchId);
    if (batch.error) batch.reject(batch.error);
    else batch.resolve();
  }

  /** Requests this producer sent to the brokers, from librdkafka's latest statistics. */
  requestCounts(): RequestCounts {
    return this.#requests;
  }

  /** Records handed to librdkafka and not yet acknowledged. */
  get queuedCount(): number {
    return rdk.rd_kafka_outq_len(this.#handle);
  }

  /** Waits up to `timeoutMs` for everything queued to be acknowledged. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const wakes = this.#wakeup.wakes;
      this.#serveEvents();
      if (this.#pending.size === 0 && this.queuedCount === 0) return;
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) {
        throw new KafkaError(
          "flush",
          ErrorCode.timedOut,
          `${this.queuedCount} records unacknowledged after ${timeoutMs} ms`,
        );
      }
      await this.#wakeup.wait(wakes, remainingMs);
    }
  }

  /** Flushes within `timeoutMs`, then destroys every native handle. Pending batches fail. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    let flushError: unknown;
    try {
      await this.flush(timeoutMs);
    } catch (error) {
      flushError = error;
    }
    this.#closed = true;
    clearImmediate(this.#serveAgain);
    clearTimeout(this.#serveSoon);
    for (const [batchId, batch] of this.#pending) {
      this.#pending.delete(batchId);
      batch.reject(
        batch.error ?? new KafkaError("close", ErrorCode.state, "producer closed before acknowledgement"),
      );
    }
    for (const topic of this.#topics.values()) rdk.rd_kafka_topic_destroy(topic);
    this.#topics.clear();
    rdk.rd_kafka_queue_destroy(this.#mainQueue);
    rdk.rd_kafka_destroy(this.#handle);
    await this.#wakeup.close();
    if (flushError) this.#logger.warn("producer closed with unacknowledged records", { error: flushError });
  }
}

/** Writes a pointer-sized little-endian word (addresses fit in 53 bits on x86_64/aarch64). */
function writeWord(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 0x1_0000_0000, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}
