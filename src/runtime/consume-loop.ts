/**
 * The one loop every consuming stage runs, so commit discipline lives in one place:
 *
 *   consume a batch -> decode (invalid records become dead letters) -> process (the stage's pure
 *   decisions and its durable side effect) -> produce outputs -> await acknowledgement -> commit.
 *
 * A failure is looked up in one table (failure-class.ts): transient ones are retried, a bounded
 * number of times; a permanent one (the side effect is refused for good, e.g. Postgres cannot store a
 * value) has its poison records isolated by processing the batch in halves and dead-lettered one at a
 * time while the rest proceeds; a fatal one (a programmer error) fails the loop at once.
 *
 * Batches are gathered across time: up to `batchSizeMax` records or `batchWaitMs`, so that at
 * everyday rates a stage pays for a produce request, a statement and an acknowledgement per batch
 * rather than per handful of records. Processing is sequential unless a stage allows
 * `processConcurrencyMax` > 1; waiting for acknowledgements is pipelined over up to
 * `inFlightBatchesMax` batches. Offsets are committed at most every `commitIntervalMs` (at once on
 * revoke and on stop), only up to each partition's last contiguous acknowledged record
 * (OffsetTracker), and never for a partition revoked meanwhile.
 */
import {
  type ConsumedRecord,
  Consumer,
  type KafkaSettings,
  type ProduceRecord,
  type Producer,
} from "../kafka/index.ts";
import { InvalidRecordError, toDeadLetter } from "./dead-letter.ts";
import { settleWithin } from "./deadline.ts";
import { failureClass, type Refusal, refusalOf } from "./failure-class.ts";
import type { Logger } from "./log.ts";
import type { StageMetrics } from "./metrics.ts";
import { OffsetTracker, type Segment } from "./offsets.ts";
import { deadLetterTopic } from "./topics.ts";

export interface Decoded<T> {
  record: ConsumedRecord;
  value: T;
}

/** What a stage plugs into the loop. */
export interface Processor<T> {
  /** Parses one record; throws InvalidRecordError for input that can never be processed. */
  decode(record: ConsumedRecord): T;
  /**
   * Handles a batch of valid records and returns the records to produce. Any durable side effect
   * (a database insert) must be complete when the promise resolves. What a thrown error leads to is
   * failureClass's decision: a transient one retries the batch; a permanent one (e.g. a Postgres data
   * exception, or an InvalidRecordError) processes the batch again in halves, down to the single
   * records refused, which become dead letters; a fatal one fails the loop.
   *
   * Must therefore be idempotent per record: a record can be processed again, alone or among others,
   * after a failed or abandoned attempt, and must then neither repeat its side effect nor lose its
   * outputs (the aggregator's insert is ON CONFLICT DO NOTHING and returns every row still pending).
   * A failed call must leave nothing that makes a later call fail (one statement, or a transaction).
   */
  process(batch: readonly Decoded<T>[]): Promise<readonly ProduceRecord[]>;
}

export interface ConsumeLoopOptions<T> {
  stage: string;
  brokers: string;
  topic: string;
  groupId: string;
  processor: Processor<T>;
  producer: Producer;
  metrics: StageMetrics;
  logger: Logger;
  batchSizeMax?: number;
  /**
   * How long a batch keeps gathering records once it has its first (Consumer.consume's gatherMs):
   * longer gives fewer, fuller batches for as much more latency per stage.
   */
  batchWaitMs?: number;
  /** Offsets are committed at most this often; on revoke and on stop at once, whatever the interval. */
  commitIntervalMs?: number;
  inFlightBatchesMax?: number;
  /**
   * Batches processed at the same time. 1 keeps processing in consumption order; a stage whose
   * processing waits on I/O and does not depend on order (the aggregator) may raise it.
   */
  processConcurrencyMax?: number;
  /** Attempts for one batch's processing or produce, on transient failures, before the loop fails. */
  attemptsMax?: number;
  /**
   * A batch whose processing has not settled after this long fails the loop at once (the stage
   * exits and restarts from its last commit): a database call that never answers, as postgres.js
   * can leave behind when its connection is killed mid-query, must not stall the stage forever.
   */
  processTimeoutMs?: number;
  /**
   * Key plus value bytes a record may have; a larger one is dead-lettered before decoding, so one
   * oversized record can neither stall a batch nor cost the stage a huge decode.
   */
  recordBytesMax?: number;
  /** Topics `process` produces to, besides dead letters: looked up before the first batch. */
  outputTopics?: readonly string[];
  /** While false, nothing is consumed (e.g. the evaluator has no rules snapshot yet). */
  isReady?: () => boolean;
  consumerSettings?: KafkaSettings;
}

interface InFlight {
  acknowledged: Promise<void>;
}

const retryBackoffMaxMs = 5000;
/**
 * An idle wait for records ends this often (the consumer is woken by new records, not by this), so
 * that a stage which stops being ready stops consuming.
 */
const idleWaitMs = 1000;

/** librdkafka's statistics (lag, requests sent) are refreshed this often; /metrics publishes them. */
export const statisticsIntervalMs = 1000;

export const defaultProcessTimeoutMs = 60_000;
/**
 * A stage fed by another stage's batches gets each of them as one burst (a produce request per
 * partition, sent together, fetched within a few ms of one another): waiting out the burst is enough,
 * longer only adds latency. The first stage, reading a steady stream, gathers longer (firstStageBatchWaitMs),
 * and the fewer, fuller batches it makes go down the whole pipeline.
 */
export const defaultBatchWaitMs = 5;
/**
 * What the first stage (the evaluator, reading what ingest writes as it comes) gathers: at 1k alerts/s,
 * batches of ~25 instead of ~12 for every stage, for the same latency end to end as 10 ms everywhere.
 */
export const firstStageBatchWaitMs = 25;
/** A crash repeats at most about this much work, which the stages' idempotence absorbs. */
export const defaultCommitIntervalMs = 1000;

/** Twice what ingest accepts for one alert (256 KiB encoded), under the topics' 1 MiB default. */
export const defaultRecordBytesMax = 512 * 1024;

export class ConsumeLoop<T> {
  readonly #options: Required<Omit<ConsumeLoopOptions<T>, "consumerSettings">> & {
    consumerSettings?: KafkaSettings;
  };
  readonly #tracker = new OffsetTracker();
  readonly #consumer: Consumer;
  readonly #inFlight: InFlight[] = [];
  #running = false;
  #stopped: Promise<void> | undefined;
  #failure: unknown;
  #statisticsTimer: ReturnType<typeof setInterval> | undefined;
  #committing: Promise<void> | undefined;
  readonly #processing = new Set<Promise<void>>();
  #commitAgain = false;
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  #lastCommitAt = Number.NEGATIVE_INFINITY;
  /** Ends the wait for records: on stop, and when a batch failed. */
  readonly #interrupt = new AbortController();

  constructor(options: ConsumeLoopOptions<T>) {
    this.#options = {
      batchSizeMax: 2000,
      batchWaitMs: defaultBatchWaitMs,
      commitIntervalMs: defaultCommitIntervalMs,
      inFlightBatchesMax: 4,
      processConcurrencyMax: 1,
      attemptsMax: 20,
      processTimeoutMs: defaultProcessTimeoutMs,
      recordBytesMax: defaultRecordBytesMax,
      outputTopics: [],
      isReady: () => true,
      ...options,
    };
    this.#consumer = new Consumer({
      brokers: options.brokers,
      groupId: options.groupId,
      topics: [options.topic],
      clientId: options.stage,
      logger: options.logger.child("consumer"),
      settings: options.consumerSettings,
      statisticsIntervalMs,
      rebalance: { onRevoked: (partitions) => this.#tracker.revoke(partitions) },
    });
  }

  /** Runs until `stop()`; rejects if a batch cannot be completed within its attempts. */
  start(): Promise<void> {
    this.#running = true;
    // A topic's first produce waits for its metadata: fetch it now, not in the first batch that needs it.
    const { producer, topic, outputTopics } = this.#options;
    producer.prepareTopics([deadLetterTopic(topic), ...outputTopics]);
    this.#statisticsTimer = setInterval(() => this.#publishStatistics(), 1000);
    this.#stopped = this.#run().finally(() => clearInterval(this.#statisticsTimer));
    return this.#stopped;
  }

  /**
   * Stops taking new batches, waits (bounded) for in-flight acknowledgements, commits what is
   * durable, and leaves the group. A batch whose outputs are not acknowledged is not committed.
   */
  async stop(timeoutMs = 3000): Promise<void> {
    this.#running = false;
    this.#interrupt.abort();
    await Promise.race([this.#stopped?.catch(() => {}), Bun.sleep(timeoutMs)]);
    await Promise.race([Promise.allSettled(this.#inFlight.map((f) => f.acknowledged)), Bun.sleep(timeoutMs)]);
    clearTimeout(this.#commitTimer);
    await this.#committing;
    await this.#consumer.close(this.#tracker.pendingCommits());
  }

  async #run(): Promise<void> {
    const { batchSizeMax, batchWaitMs, inFlightBatchesMax, processConcurrencyMax, isReady, logger } =
      this.#options;
    while (this.#running) {
      if (this.#failure) throw this.#failure;
      if (!isReady()) {
        await Bun.sleep(50);
        continue;
      }
      const records = await this.#consumer.consume(batchSizeMax, idleWaitMs, {
        gatherMs: batchWaitMs,
        signal: this.#interrupt.signal,
      });
      // Not running: the batch is abandoned uncommitted and will be redelivered.
      if (records.length === 0 || !this.#running) continue;
      const startedAt = performance.now();
      const segments = this.#trackSegments(records);
      const processed = this.#decodeAndProcess(records);
      const processing = processed.then(
        () => undefined,
        () => undefined,
      );
      this.#processing.add(processing);
      void processing.finally(() => this.#processing.delete(processing));
      const acknowledged = processed
        .then((outputs) => (outputs === undefined ? false : this.#produceWithRetry(outputs).then(() => true)))
        .then(
          (done) => {
            // Not done: stopped while retrying; the batch stays uncommitted and is redelivered.
            if (!done) return;
            for (const segment of segments) this.#tracker.complete(segment);
            this.#options.metrics.batchSeconds.observe((performance.now() - startedAt) / 1000);
            this.#scheduleCommit();
          },
          (error: unknown) => {
            this.#failure ??= error;
            this.#interrupt.abort();
            logger.error("giving up on a batch: not processed or outputs not acknowledged", {
              error,
              failureClass: failureClass(error),
            });
          },
        );
      const entry: InFlight = { acknowledged };
      this.#inFlight.push(entry);
      void acknowledged.finally(() => this.#inFlight.splice(this.#inFlight.indexOf(entry), 1));
      // Race only what is still processing: a settled promise would win every race and spin.
      while (this.#processing.size >= processConcurrencyMax) await Promise.race(this.#processing);
      while (this.#inFlight.length >= inFlightBatchesMax) {
        await Promise.race(this.#inFlight.map((f) => f.acknowledged));
      }
    }
    await this.#committing;
    if (this.#failure) throw this.#failure;
  }

  /**
   * Commits what is durable, at most every `commitIntervalMs` and without making the next batch
   * wait for the broker's answer. At most one commit is in flight or scheduled; offsets that become
   * durable meanwhile go out with it or the next one. Once stopping, `stop` commits what is left.
   */
  #scheduleCommit(): void {
    if (!this.#running || this.#commitTimer) return;
    if (this.#committing) {
      this.#commitAgain = true;
      return;
    }
    const dueInMs = this.#lastCommitAt + this.#options.commitIntervalMs - performance.now();
    if (dueInMs > 0) {
      this.#commitTimer = setTimeout(() => {
        this.#commitTimer = undefined;
        this.#scheduleCommit();
      }, dueInMs);
      return;
    }
    this.#lastCommitAt = performance.now();
    this.#committing = this.#commit().finally(() => {
      this.#committing = undefined;
      if (this.#commitAgain) {
        this.#commitAgain = false;
        this.#scheduleCommit();
      }
    });
  }

  async #commit(): Promise<void> {
    const offsets = this.#tracker.pendingCommits();
    if (offsets.length === 0) return;
    try {
      await this.#consumer.commit(offsets);
      this.#tracker.markCommitted(offsets);
      this.#options.metrics.commits.inc({ outcome: "ok" });
    } catch (error) {
      // Not fatal: the offsets stay pending and go out with the next commit.
      this.#options.metrics.commits.inc({ outcome: "failed" });
      this.#options.logger.warn("offset commit failed", { error });
    }
  }

  #trackSegments(records: readonly ConsumedRecord[]): Segment[] {
    const last = new Map<string, ConsumedRecord>();
    for (const record of records) last.set(`${record.topic}\u0000${record.partition}`, record);
    return [...last.values()].map((r) =>
      this.#tracker.track(r.topic, r.partition, r.assignmentEpoch, r.offset),
    );
  }

  /** Decodes and processes; returns every record to produce, dead letters included. */
  async #decodeAndProcess(records: readonly ConsumedRecord[]): Promise<readonly ProduceRecord[] | undefined> {
    const { processor, metrics, recordBytesMax } = this.#options;
    const valid: Decoded<T>[] = [];
    const deadLetters: ProduceRecord[] = [];
    // One topic is subscribed; counting per batch keeps the metric off the per-record path.
    metrics.consumed.inc({ topic: this.#options.topic }, records.length);
    for (const record of records) {
      try {
        const sizeBytes = (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0);
        if (sizeBytes > recordBytesMax)
          throw new InvalidRecordError(
            "value",
            `record of ${sizeBytes} bytes exceeds the limit of ${recordBytesMax}`,
          );
        valid.push({ record, value: processor.decode(record) });
      } catch (error) {
        if (!(error instanceof InvalidRecordError)) throw error;
        deadLetters.push(this.#deadLetter(record, refusalOf(error)));
      }
    }
    if (valid.length === 0) return deadLetters;
    const outputs = await this.#processIsolatingPoison(valid, deadLetters);
    if (outputs === undefined) return undefined;
    return deadLetters.length === 0 ? outputs : deadLetters.concat(outputs);
  }

  /**
   * Processes `batch` and returns its outputs. When the processor refuses it permanently, some of
   * its records can never succeed: each half is processed on its own, and so on down to single
   * records; a single record refused permanently becomes a dead letter (added to `deadLetters`) and
   * every other record is processed in a part that succeeds. For n records that is at most 2n - 1
   * calls, each with its own bounded retries; Processor.process's idempotence makes repeating a
   * record safe. Undefined when the loop stopped meanwhile.
   */
  async #processIsolatingPoison(
    batch: readonly Decoded<T>[],
    deadLetters: ProduceRecord[],
  ): Promise<readonly ProduceRecord[] | undefined> {
    const { logger } = this.#options;
    const outputs: ProduceRecord[] = [];
    // Parts still to process, the next one last: a first half is processed before its second half.
    const parts: (readonly Decoded<T>[])[] = [batch];
    for (let part = parts.pop(); part !== undefined; part = parts.pop()) {
      const result = await this.#processPart(part);
      if (result === undefined) return undefined;
      if ("outputs" in result) {
        if (part === batch) return result.outputs; // the usual case: nothing was refused
        for (const output of result.outputs) outputs.push(output);
      } else if (part.length > 1) {
        if (part === batch)
          logger.warn("a batch was refused for good: processing it in halves to isolate the records", {
            records: batch.length,
            error: result.refused,
          });
        const middle = Math.ceil(part.length / 2);
        parts.push(part.slice(middle), part.slice(0, middle));
      } else {
        const { record } = part[0] as Decoded<T>;
        const refusal = refusalOf(result.refused);
        logger.warn("record refused for good: dead-lettered", {
          topic: record.topic,
          partition: record.partition,
          offset: record.offset,
          field: refusal.field,
          reason: refusal.reason,
        });
        deadLetters.push(this.#deadLetter(record, refusal));
      }
    }
    return outputs;
  }

  /**
   * One call of `process` for `part`, transient failures retried: its outputs, or the error of a
   * permanent refusal. A fatal failure, or a transient one past its attempts, is thrown; undefined
   * when the loop stopped meanwhile.
   */
  async #processPart(
    part: readonly Decoded<T>[],
  ): Promise<{ outputs: readonly ProduceRecord[] } | { refused: unknown } | undefined> {
    const { processor, processTimeoutMs } = this.#options;
    try {
      const outputs = await this.#retry("process", () =>
        settleWithin(processor.process(part), processTimeoutMs, "a batch's processing"),
      );
      return outputs === undefined ? undefined : { outputs };
    } catch (error) {
      if (failureClass(error) === "permanent") return { refused: error };
      throw error;
    }
  }

  #deadLetter(record: ConsumedRecord, refusal: Refusal): ProduceRecord {
    this.#options.metrics.deadLettered.inc({ reason: refusal.kind });
    return toDeadLetter(record, refusal, this.#options.stage, Date.now());
  }

  async #produceWithRetry(outputs: readonly ProduceRecord[]): Promise<void> {
    const sent = await this.#retry("produce", () => this.#options.producer.send(outputs).then(() => true));
    if (sent === undefined) throw new Error("stopped before outputs were acknowledged");
    const perTopic = new Map<string, number>();
    for (const { topic } of outputs) perTopic.set(topic, (perTopic.get(topic) ?? 0) + 1);
    for (const [topic, count] of perTopic) this.#options.metrics.produced.inc({ topic }, count);
  }

  /**
   * Retries transient failures with capped exponential backoff, at most `attemptsMax` attempts;
   * any other failure is thrown at once. Undefined when the loop stopped meanwhile: the batch is
   * abandoned uncommitted, since a failure while stopping (a client being closed) is no verdict.
   */
  async #retry<R>(what: string, attempt: () => Promise<R>): Promise<R | undefined> {
    const { attemptsMax, logger } = this.#options;
    for (let attemptNumber = 1; ; attemptNumber++) {
      try {
        return await attempt();
      } catch (error) {
        if (!this.#running) return undefined;
        if (failureClass(error) !== "transient" || attemptNumber >= attemptsMax) throw error;
        const delayMs = Math.min(100 * 2 ** (attemptNumber - 1), retryBackoffMaxMs);
        logger.warn(`${what} failed, retrying`, { error, attempt: attemptNumber, delayMs });
        await Bun.sleep(delayMs);
        if (!this.#running) return undefined;
      }
    }
  }

  #publishStatistics(): void {
    const { metrics, producer } = this.#options;
    for (const { topic, partition, lag } of this.#consumer.lag()) {
      metrics.lag.set({ topic, partition: String(partition) }, lag);
    }
    for (const [client, counts] of [
      ["consumer", this.#consumer.requestCounts()],
      ["producer", producer.requestCounts()],
    ] as const)
      for (const [request, count] of Object.entries(counts))
        metrics.kafkaRequests.set({ client, request }, count);
  }
}
