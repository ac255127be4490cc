/**
 * A consumer-group member with manual commits only. Records come in batches; offsets are committed
 * explicitly for what the caller has durably processed, and never for a partition that has been
 * revoked since its records were consumed (each assignment of a partition gets a new epoch, carried
 * by every record and checked at commit time).
 *
 * Threads: rebalance, error, log and statistics callbacks are JS functions, but librdkafka invokes
 * them only from inside the calls we make on the JS thread (consume, close): `log.queue` keeps log
 * lines off librdkafka's own threads, and the main queue is forwarded to the consumer queue. An idle
 * consumer polls nothing: librdkafka wakes it (wakeup.ts) when records, events or commit results
 * arrive.
 */
import { type FFITypeOrString, JSCallback, type Pointer, ptr, read, toArrayBuffer } from "bun:ffi";
import { check, ErrorCode, KafkaError } from "./errors.ts";
import {
  type BrokerStatisticsJson,
  buildConf,
  createHandle,
  fromNativeList,
  type KafkaLogger,
  type KafkaSettings,
  logAtSyslogLevel,
  opaque,
  partitionKey,
  type RequestCounts,
  requestCountsFromStatistics,
  type TopicPartition,
  type TopicPartitionOffset,
  toNativeList,
  withNativeList,
} from "./handle.ts";
import { EventType, libc, MessageLayout, rdk, readCString } from "./native.ts";
import { QueueWakeup } from "./wakeup.ts";

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: ReadonlyMap<string, Uint8Array>;
  timestampMs: number;
  /** Which assignment of this partition the record was consumed under; see `commit`. */
  assignmentEpoch: number;
}

export interface CommitOffset extends TopicPartitionOffset {
  assignmentEpoch: number;
}

export interface RebalanceListener {
  onAssigned?(partitions: readonly TopicPartition[]): void;
  /**
   * Called before partitions are taken away. Returns offsets that are durable and may be committed
   * now, while this member still owns the partitions. In-flight work on them must not be committed.
   */
  onRevoked?(partitions: readonly TopicPartition[]): readonly CommitOffset[];
}

export interface ConsumerOptions {
  brokers: string;
  groupId: string;
  topics: readonly string[];
  clientId?: string;
  logger: KafkaLogger;
  rebalance?: RebalanceListener;
  statisticsIntervalMs?: number;
  /** Extra librdkafka settings, applied last. */
  settings?: KafkaSettings;
}

export interface PartitionLag extends TopicPartition {
  lag: number;
}

export interface ConsumeOptions {
  /**
   * Once a first record is there, how long to keep gathering more (until `recordsMax`). 0 hands on
   * what the fetched queue holds at once.
   */
  gatherMs?: number;
  /** Ends the wait early, with what was gathered so far. */
  signal?: AbortSignal;
}

interface PendingCommit {
  resolve: () => void;
  reject: (error: KafkaError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** How long the group waits for a silent member before giving its partitions to the others. */
export const consumerSessionTimeoutMs = 10_000;
const commitTimeoutMs = 10_000;
const emptyHeaders: ReadonlyMap<string, Uint8Array> = new Map();
const emptyBytes = new Uint8Array(0);
const noRecords: readonly ConsumedRecord[] = Object.freeze([]);
/**
 * While gathering, the queue is looked at this often (and at the end) and polled if anything came: a
 * long gathering still ends soon once `recordsMax` are in, and serves a rebalance without delay; a
 * short one sleeps through.
 */
const gatherLookIntervalMs = 50;

export class Consumer {
  readonly #handle: Pointer;
  readonly #queue: Pointer;
  readonly #commitQueue: Pointer;
  readonly #logger: KafkaLogger;
  readonly #listener: RebalanceListener;
  readonly #callbacks: JSCallback[] = [];
  readonly #epochs = new Map<string, number>();
  readonly #pendingCommits = new Map<number, PendingCommit>();
  readonly #wakeup: QueueWakeup;
  #messagePointers = new BigUint64Array(1024);
  readonly #out = new BigUint64Array(3);
  #nextEpoch = 1;
  #nextCommitId = 1;
  #lag: PartitionLag[] = [];
  #requests: RequestCounts = {};
  #closed = false;
  /** Whether the group ever gave this consumer an assignment (see close). */
  #assignedOnce = false;

  constructor(options: ConsumerOptions) {
    this.#logger = options.logger;
    this.#listener = options.rebalance ?? {};
    const conf = buildConf({
      "bootstrap.servers": options.brokers,
      "group.id": options.groupId,
      "client.id": options.clientId ?? "alerting",
      "enable.auto.commit": false,
      "enable.auto.offset.store": false,
      "auto.offset.reset": "earliest",
      "partition.assignment.strategy": "cooperative-sticky",
      "session.timeout.ms": consumerSessionTimeoutMs,
      "heartbeat.interval.ms": 1000,
      // librdkafka 2.0 stops fetching once this many records wait locally; the default (100k) made
      // the fetcher idle half the time at high rates. Memory stays bounded by the kbytes limit.
      "queued.min.messages": 1_000_000,
      "queued.max.messages.kbytes": 65_536,
      "statistics.interval.ms": options.statisticsIntervalMs ?? 5000,
      // Requests are small and latency-bound: Nagle would hold one back while another is unacknowledged.
      "socket.nagle.disable": true,
      "log.queue": true,
      ...options.settings,
    });
    this.#installCallbacks(conf);
    this.#handle = createHandle("consumer", conf);
    check("poll_set_consumer", rdk.rd_kafka_poll_set_consumer(this.#handle));
    this.#queue = rdk.rd_kafka_queue_get_consumer(this.#handle) as Pointer;
    check("set log queue", rdk.rd_kafka_set_log_queue(this.#handle, null));
    this.#commitQueue = rdk.rd_kafka_queue_new(this.#handle) as Pointer;
    this.#wakeup = new QueueWakeup(() => {
      if (!this.#closed) this.#serveCommitResults();
    });
    this.#wakeup.watch(this.#queue);
    this.#wakeup.watch(this.#commitQueue);
    const topics = options.topics.map((topic) => ({ topic, partition: -1 }));
    withNativeList(topics, (list) => check("subscribe", rdk.rd_kafka_subscribe(this.#handle, list)));
  }

  #installCallbacks(conf: Pointer): void {
    const callback = <A extends unknown[]>(
      what: string,
      body: (...args: A) => void,
      args: FFITypeOrString[],
      returns: "void" | "i32" = "void",
    ) => {
      // An exception must never unwind through librdkafka's C frames: log it here instead.
      const guarded = (...values: A) => {
        try {
          body(...values);
        } catch (error) {
          this.#logger.error(`${what} callback failed`, { error });
        }
        return returns === "i32" ? 0 : undefined;
      };
      const jsCallback = new JSCallback(guarded as (...values: unknown[]) => unknown, { args, returns });
      this.#callbacks.push(jsCallback);
      return jsCallback.ptr;
    };
    const fourPointers: FFITypeOrString[] = ["ptr", "i32", "ptr", "ptr"];
    rdk.rd_kafka_conf_set_rebalance_cb(
      conf,
      callback(
        "rebalance",
        (_rk: Pointer, code: number, list: Pointer) => this.#onRebalance(code, list),
        fourPointers,
      ),
    );
    rdk.rd_kafka_conf_set_error_cb(
      conf,
      callback(
        "error",
        (_rk: Pointer, code: number, reason: Pointer) => {
          this.#logger.warn("consumer error", { code, reason: readCString(reason) });
        },
        fourPointers,
      ),
    );
    rdk.rd_kafka_conf_set_log_cb(
      conf,
      callback(
        "log",
        (_rk: Pointer, level: number, facility: Pointer, message: Pointer) => {
          logAtSyslogLevel(this.#logger, level, readCString(facility), readCString(message));
        },
        fourPointers,
      ),
    );
    // librdkafka frees the statistics JSON after the callback returns 0.
    rdk.rd_kafka_conf_set_stats_cb(
      conf,
      callback(
        "statistics",
        (_rk: Pointer, json: Pointer, length: number | bigint) => {
          const bytes = new Uint8Array(toArrayBuffer(json, 0, Number(length)));
          const statistics = JSON.parse(new TextDecoder().decode(bytes)) as StatisticsJson;
          this.#lag = lagFromStatistics(statistics);
          this.#requests = requestCountsFromStatistics(statistics);
        },
        ["ptr", "ptr", "usize", "ptr"],
        "i32",
      ),
    );
  }

  #onRebalance(code: number, list: Pointer): void {
    const partitions = fromNativeList(list).map(({ topic, partition }) => ({ topic, partition }));
    const cooperative = String(rdk.rd_kafka_rebalance_protocol(this.#handle)) === "COOPERATIVE";
    if (code === ErrorCode.assignPartitions) {
      this.#assignedOnce = true;
      for (const { topic, partition } of partitions)
        this.#epochs.set(partitionKey(topic, partition), this.#nextEpoch++);
      this.#applyAssignment(cooperative ? rdk.rd_kafka_incremental_assign : null, list, true);
      this.#logger.info("partitions assigned", { partitions: describe(partitions) });
      this.#listener.onAssigned?.(partitions);
      return;
    }
    // Revoke: commit what the caller says is durable while we still own it, then forget the epochs
    // so that nothing consumed under them can be committed later.
    const durable = this.#listener.onRevoked?.(partitions) ?? [];
    const owned = this.#ownedOffsets(durable);
    if (owned.length > 0 && code === ErrorCode.revokePartitions) {
      const result = withNativeList(owned, (offsets) => rdk.rd_kafka_commit(this.#handle, offsets, 0));
      if (result !== 0)
        this.#logger.warn("commit on revoke failed", { error: new KafkaError("commit", result) });
    }
    for (const { topic, partition } of partitions) this.#epochs.delete(partitionKey(topic, partition));
    this.#applyAssignment(cooperative ? rdk.rd_kafka_incremental_unassign : null, list, false);
    this.#logger.info("partitions revoked", { partitions: describe(partitions) });
  }

  #applyAssignment(
    incremental: ((rk: Pointer, list: Pointer) => unknown) | null,
    list: Pointer,
    assign: boolean,
  ) {
    if (incremental) {
      const error = incremental(this.#handle, list) as Pointer | null;
      if (error) {
        const code = rdk.rd_kafka_error_code(error);
        rdk.rd_kafka_error_destroy(error);
        this.#logger.error("incremental (un)assign failed", { error: new KafkaError("assign", code) });
      }
      return;
    }
    check("assign", rdk.rd_kafka_assign(this.#handle, assign ? list : null));
  }

  #ownedOffsets(offsets: readonly CommitOffset[]): TopicPartitionOffset[] {
    return offsets
      .filter((o) => this.#epochs.get(partitionKey(o.topic, o.partition)) === o.assignmentEpoch)
      .map(({ topic, partition, offset }) => ({ topic, partition, offset }));
  }

  /** Partitions currently assigned to this member. */
  assignment(): TopicPartition[] {
    return [...this.#epochs.keys()].map((key) => {
      const [topic, partition] = key.split("\u0000") as [string, string];
      return { topic, partition: Number(partition) };
    });
  }

  /** Whether records consumed under `assignmentEpoch` may still be committed. */
  owns(topic: string, partition: number, assignmentEpoch: number): boolean {
    return this.#epochs.get(partitionKey(topic, partition)) === assignmentEpoch;
  }

  /**
   * Takes up to `recordsMax` of the messages already fetched, without blocking. `drained`: the queue
   * was emptied, so librdkafka signals the wakeup at the next message.
   */
  #poll(recordsMax: number): { records: readonly ConsumedRecord[]; drained: boolean } {
    if (this.#closed) return { records: noRecords, drained: true };
    if (this.#messagePointers.length < recordsMax) this.#messagePointers = new BigUint64Array(recordsMax);
    const pointers = this.#messagePointers;
    const count = Number(rdk.rd_kafka_consume_batch_queue(this.#queue, 0, ptr(pointers), recordsMax));
    if (count < 0) throw new KafkaError("consume", rdk.rd_kafka_last_error());
    if (count === 0) return { records: noRecords, drained: true };
    try {
      return { records: this.#copyBatch(pointers, count), drained: count < recordsMax };
    } finally {
      for (let i = 0; i < count; i++) rdk.rd_kafka_message_destroy(Number(pointers[i]) as Pointer);
    }
  }

  /**
   * Copies everything out of the native messages: nothing may point into them once they are
   * destroyed. Keys and values of the batch are copied with memcpy into one buffer (one JS
   * allocation per batch instead of two per record) and handed out as views on it.
   */
  #copyBatch(pointers: BigUint64Array, count: number): ConsumedRecord[] {
    let totalBytes = 0;
    for (let i = 0; i < count; i++) {
      const message = Number(pointers[i]) as Pointer;
      if (read.i32(message, MessageLayout.err) !== ErrorCode.noError) continue;
      totalBytes +=
        Number(read.u64(message, MessageLayout.len)) + Number(read.u64(message, MessageLayout.keyLen));
    }
    // Backed by an explicit ArrayBuffer: a small typed array created bare keeps its bytes inline
    // and moves them on the first subarray(), which would leave arenaAddress dangling.
    const arena = new Uint8Array(new ArrayBuffer(totalBytes));
    const arenaAddress = totalBytes > 0 ? ptr(arena) : 0;
    let used = 0;
    const copy = (address: number | null, length: number): Uint8Array | null => {
      if (!address) return null;
      if (length === 0) return emptyBytes;
      libc.memcpy(arenaAddress + used, address, length);
      const view = arena.subarray(used, used + length);
      used += length;
      return view;
    };
    const records: ConsumedRecord[] = [];
    let lastPartitionId = "";
    let lastEpoch = 0;
    for (let i = 0; i < count; i++) {
      const message = Number(pointers[i]) as Pointer;
      const code = read.i32(message, MessageLayout.err);
      if (code !== ErrorCode.noError) {
        this.#reportMessageError(message, code);
        continue;
      }
      const topic = this.#topicName(read.ptr(message, MessageLayout.topic) as Pointer);
      const partition = read.i32(message, MessageLayout.partition);
      const partitionId = partitionKey(topic, partition);
      if (partitionId !== lastPartitionId) {
        lastPartitionId = partitionId;
        lastEpoch = this.#epochs.get(partitionId) ?? 0;
      }
      records.push({
        topic,
        partition,
        offset: Number(read.i64(message, MessageLayout.offset)),
        key: copy(read.ptr(message, MessageLayout.key), Number(read.u64(message, MessageLayout.keyLen))),
        value: copy(read.ptr(message, MessageLayout.payload), Number(read.u64(message, MessageLayout.len))),
        headers: this.#copyHeaders(message),
        timestampMs: Number(rdk.rd_kafka_message_timestamp(message, ptr(this.#out))),
        assignmentEpoch: lastEpoch,
      });
    }
    return records;
  }

  #reportMessageError(message: Pointer, code: number): void {
    if (code === ErrorCode.partitionEof) return;
    const detail = copyBytes(
      read.ptr(message, MessageLayout.payload),
      Number(read.u64(message, MessageLayout.len)),
    );
    this.#logger.warn("consume error", { code, detail: detail ? new TextDecoder().decode(detail) : "" });
  }

  /** A subscribed topic's rd_kafka_topic_t lives as long as the client, so its name is cached. */
  readonly #topicNames = new Map<number, string>();
  #topicName(topicHandle: Pointer): string {
    let name = this.#topicNames.get(topicHandle);
    if (name === undefined) {
      name = String(rdk.rd_kafka_topic_name(topicHandle));
      this.#topicNames.set(topicHandle, name);
    }
    return name;
  }

  #copyHeaders(message: Pointer): ReadonlyMap<string, Uint8Array> {
    const out = this.#out;
    if (rdk.rd_kafka_message_headers(message, ptr(out)) !== 0) return emptyHeaders;
    const headers = Number(out[0]) as Pointer;
    const result = new Map<string, Uint8Array>();
    for (let index = 0; ; index++) {
      if (rdk.rd_kafka_header_get_all(headers, index, ptr(out), ptr(out, 8), ptr(out, 16)) !== 0) break;
      result.set(readCString(Number(out[0])), copyBytes(Number(out[1]), Number(out[2])) ?? new Uint8Array(0));
    }
    return result;
  }

  /**
   * Waits up to `waitMs` for a first record, then gathers more for `options.gatherMs`, and returns
   * up to `recordsMax` (fewer when the wait or the gathering ended first, none when nothing came).
   * While it waits, the event loop runs (health checks, metrics, database I/O): librdkafka wakes it
   * when the first records arrive, nothing is polled in between. While it gathers it sleeps, polling
   * every gatherLookIntervalMs if anything came, and at the end: librdkafka signals a queue again
   * only once it was polled, so a batch costs one wake instead of one per fetch response.
   */
  async consume(
    recordsMax: number,
    waitMs: number,
    options: ConsumeOptions = {},
  ): Promise<readonly ConsumedRecord[]> {
    const { gatherMs = 0, signal } = options;
    let until = performance.now() + waitMs;
    let batch: ConsumedRecord[] = [];
    for (;;) {
      const wakes = this.#wakeup.wakes;
      const { records, drained } = this.#poll(recordsMax - batch.length);
      if (records.length > 0) {
        if (batch.length === 0) until = performance.now() + gatherMs;
        batch = batch.length === 0 ? (records as ConsumedRecord[]) : batch.concat(records);
        if (batch.length >= recordsMax) return batch;
      }
      if (!drained) continue; // only an emptied queue signals the wakeup again
      const remainingMs = until - performance.now();
      // Timers have whole milliseconds: less than one left is no reason to sleep (and wake) again.
      if (remainingMs < 1 || this.#closed || signal?.aborted) return batch;
      if (batch.length === 0) {
        await this.#wakeup.wait(wakes, remainingMs, signal);
        continue;
      }
      for (let leftMs = remainingMs; leftMs >= 1; leftMs = until - performance.now()) {
        await sleep(Math.min(leftMs, gatherLookIntervalMs), signal);
        if (signal?.aborted || this.#closed || this.#queuedCount() > 0) break;
      }
    }
  }

  /** Records (and events) waiting in the consumer queue, read without serving it. */
  #queuedCount(): number {
    return Number(rdk.rd_kafka_queue_length(this.#queue));
  }

  /**
   * Commits `offsets` (next offset to read, per partition) asynchronously. Offsets of partitions
   * revoked since their records were consumed are dropped, never committed.
   */
  commit(offsets: readonly CommitOffset[]): Promise<void> {
    const owned = this.#ownedOffsets(offsets);
    if (owned.length === 0 || this.#closed) return Promise.resolve();
    const commitId = this.#nextCommitId++;
    return new Promise<void>((resolve, reject) => {
      const list = toNativeList(owned);
      try {
        const code = rdk.rd_kafka_commit_queue(this.#handle, list, this.#commitQueue, null, opaque(commitId));
        if (code !== 0) return reject(new KafkaError("commit", code));
        // The result arrives on the commit queue, which wakes us; the timer only bounds the wait.
        const timer = setTimeout(() => {
          this.#pendingCommits.delete(commitId);
          reject(
            new KafkaError("commit", ErrorCode.timedOut, `no commit result within ${commitTimeoutMs} ms`),
          );
        }, commitTimeoutMs);
        this.#pendingCommits.set(commitId, { resolve, reject, timer });
      } finally {
        rdk.rd_kafka_topic_partition_list_destroy(list);
      }
    });
  }

  #serveCommitResults(): void {
    for (;;) {
      const event = rdk.rd_kafka_queue_poll(this.#commitQueue, 0) as Pointer | null;
      if (!event) return;
      try {
        if (rdk.rd_kafka_event_type(event) !== EventType.offsetCommit) continue;
        const commitId = Number(rdk.rd_kafka_event_opaque(event));
        const pending = this.#pendingCommits.get(commitId);
        if (!pending) continue;
        this.#pendingCommits.delete(commitId);
        clearTimeout(pending.timer);
        const code = rdk.rd_kafka_event_error(event);
        const failed = fromNativeList(rdk.rd_kafka_event_topic_partition_list(event) as Pointer | null).find(
          (p) => p.errorCode !== 0,
        );
        if (code !== 0) pending.reject(new KafkaError("commit", code));
        else if (failed)
          pending.reject(new KafkaError(`commit ${failed.topic}[${failed.partition}]`, failed.errorCode));
        else pending.resolve();
      } finally {
        rdk.rd_kafka_event_destroy(event);
      }
    }
  }

  /** Consumer lag per assigned partition, from librdkafka's latest statistics. */
  lag(): readonly PartitionLag[] {
    return this.#lag;
  }

  /** Requests this consumer sent to the brokers, from librdkafka's latest statistics. */
  requestCounts(): RequestCounts {
    return this.#requests;
  }

  /** The committed offsets of `partitions` for this group (blocking up to `timeoutMs`). */
  committed(partitions: readonly TopicPartition[], timeoutMs = 5000): TopicPartitionOffset[] {
    return withNativeList(partitions, (list) => {
      check("committed", rdk.rd_kafka_committed(this.#handle, list, timeoutMs));
      return fromNativeList(list).map(({ topic, partition, offset }) => ({ topic, partition, offset }));
    });
  }

  /**
   * Commits `finalOffsets` synchronously, leaves the group (serving the revoke on this thread) and
   * destroys every native handle and callback, but for one that never got an assignment (below).
   * Safe to call twice.
   */
  async close(finalOffsets: readonly CommitOffset[] = []): Promise<void> {
    if (this.#closed) return;
    const owned = this.#ownedOffsets(finalOffsets);
    if (owned.length > 0) {
      const code = withNativeList(owned, (list) => rdk.rd_kafka_commit(this.#handle, list, 0));
      if (code !== 0) this.#logger.warn("final commit failed", { error: new KafkaError("commit", code) });
    }
    // Let outstanding async commits report before the queue goes away.
    const deadline = performance.now() + 2000;
    while (this.#pendingCommits.size > 0 && performance.now() < deadline) {
      const wakes = this.#wakeup.wakes;
      this.#serveCommitResults();
      if (this.#pendingCommits.size > 0) await this.#wakeup.wait(wakes, deadline - performance.now());
    }
    this.#closed = true;
    const closeCode = rdk.rd_kafka_consumer_close(this.#handle);
    if (closeCode !== 0) this.#logger.warn("consumer close", { error: new KafkaError("close", closeCode) });
    for (const [id, pending] of this.#pendingCommits) {
      this.#pendingCommits.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new KafkaError("commit", ErrorCode.state, "consumer closed before the commit result"));
    }
    rdk.rd_kafka_queue_destroy(this.#commitQueue);
    rdk.rd_kafka_queue_destroy(this.#queue);
    if (!this.#assignedOnce) {
      // Debian 12's librdkafka (2.0) aborts the process when it destroys a cooperative-sticky
      // consumer whose group answered its JoinGroup but not yet its SyncGroup
      // (confluentinc/librdkafka#4312, fixed in 2.3): a stage stopped while its group still
      // rebalances. The group was left above; the handle, its callbacks and its wakeup socket are
      // left to the process's exit instead.
      this.#logger.warn("consumer closed before its first assignment: its native handle is not destroyed");
      this.#epochs.clear();
      return;
    }
    rdk.rd_kafka_destroy(this.#handle);
    // Only now can no native code call back into JS, nor write to the wakeup socket.
    for (const callback of this.#callbacks) callback.close();
    await this.#wakeup.close();
    this.#epochs.clear();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

function copyBytes(address: number | Pointer | null, length: number): Uint8Array | null {
  if (!address) return null;
  if (length === 0) return new Uint8Array(0);
  return new Uint8Array(toArrayBuffer(address as Pointer, 0, length)).slice();
}

function describe(partitions: readonly TopicPartition[]): string {
  return partitions.map((p) => `${p.topic}[${p.partition}]`).join(",");
}

interface StatisticsJson extends BrokerStatisticsJson {
  topics?: Record<string, { partitions?: Record<string, { consumer_lag?: number; partition?: number }> }>;
}

function lagFromStatistics(statistics: StatisticsJson): PartitionLag[] {
  const lag: PartitionLag[] = [];
  for (const [topic, info] of Object.entries(statistics.topics ?? {})) {
    for (const [id, partition] of Object.entries(info.partitions ?? {})) {
      const partitionId = Number(id);
      if (partitionId < 0 || partition.consumer_lag === undefined || partition.consumer_lag < 0) continue;
      lag.push({ topic, partition: partitionId, lag: partition.consumer_lag });
    }
  }
  return lag;
}
