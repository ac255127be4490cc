/**
 * The one loop every consuming stage runs, so commit discipline lives in one place:
 *
 *   consume a batch -> decode (invalid records become dead letters) -> process (the stage's pure
 *   decisions and its durable side effect) -> produce outputs -> await acknowledgement -> commit.
 *
 * Processing is sequential unless a stage allows `processConcurrencyMax` > 1; waiting for
 * acknowledgements is pipelined over up to `inFlightBatchesMax` batches. Offsets are committed only up to each partition's last contiguous
 * acknowledged record (OffsetTracker), and never for a partition revoked meanwhile.
 */
import {
  type ConsumedRecord,
  Consumer,
  type KafkaSettings,
  type ProduceRecord,
  type Producer,
} from "../kafka/index.ts";
import { InvalidRecordError, toDeadLetter } from "./dead-letter.ts";
import { DeadlineError, settleWithin } from "./deadline.ts";
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
   * (a database insert) must be complete when the promise resolves. Throwing retries the batch.
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
  batchWaitMs?: number;
  inFlightBatchesMax?: number;
  /**
   * Batches processed at the same time. 1 keeps processing in consumption order; a stage whose
   * processing waits on I/O and does not depend on order (the aggregator) may raise it.
   */
  processConcurrencyMax?: number;
  /** Attempts for one batch's processing or produce before the loop gives up and fails. */
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

export const defaultProcessTimeoutMs = 60_000;

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
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  #committing: Promise<void> | undefined;
  readonly #processing = new Set<Promise<void>>();
  #commitAgain = false;

  constructor(options: ConsumeLoopOptions<T>) {
    this.#options = {
      batchSizeMax: 2000,
      batchWaitMs: 50,
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
      rebalance: { onRevoked: (partitions) => this.#tracker.revoke(partitions) },
    });
  }

  get consumer(): Consumer {
    return this.#consumer;
  }

  /** Runs until `stop()`; rejects if a batch cannot be completed within its attempts. */
  start(): Promise<void> {
    this.#running = true;
    // A topic's first produce waits for its metadata: fetch it now, not in the first batch that needs it.
    const { producer, topic, outputTopics } = this.#options;
    producer.prepareTopics([deadLetterTopic(topic), ...outputTopics]);
    this.#lagTimer = setInterval(() => this.#publishLag(), 1000);
    this.#stopped = this.#run().finally(() => clearInterval(this.#lagTimer));
    return this.#stopped;
  }

  /**
   * Stops taking new batches, waits (bounded) for in-flight acknowledgements, commits what is
   * durable, and leaves the group. A batch whose outputs are not acknowledged is not committed.
   */
  async stop(timeoutMs = 3000): Promise<void> {
    this.#running = false;
    await Promise.race([this.#stopped?.catch(() => {}), Bun.sleep(timeoutMs)]);
    await Promise.race([Promise.allSettled(this.#inFlight.map((f) => f.acknowledged)), Bun.sleep(timeoutMs)]);
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
      const records = await this.#consumer.consume(batchSizeMax, batchWaitMs);
      if (records.length === 0 || !this.#running) {
        // Not running: the batch is abandoned uncommitted and will be redelivered.
        this.#commitSoon();
        continue;
      }
      const startedAt = performance.now();
      const segments = this.#trackSegments(records);
      const processed = this.#processWithRetry(records);
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
            this.#commitSoon();
          },
          (error: unknown) => {
            this.#failure ??= error;
            logger.error("giving up on a batch: not processed or outputs not acknowledged", { error });
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
   * Commits what is durable without making the next batch wait for the broker's answer. At most
   * one commit is in flight; offsets that become durable meanwhile go out with the next one.
   */
  #commitSoon(): void {
    if (this.#committing) {
      this.#commitAgain = true;
      return;
    }
    this.#committing = this.#commit().finally(() => {
      this.#committing = undefined;
      if (this.#commitAgain) {
        this.#commitAgain = false;
        this.#commitSoon();
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
  async #processWithRetry(records: readonly ConsumedRecord[]): Promise<ProduceRecord[] | undefined> {
    const { processor, stage, metrics, recordBytesMax } = this.#options;
    const valid: Decoded<T>[] = [];
    const deadLetters: ProduceRecord[] = [];
    const nowMs = Date.now();
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
        metrics.deadLettered.inc({ field: error.field });
        deadLetters.push(toDeadLetter(record, error, stage, nowMs));
      }
    }
    if (valid.length === 0) return deadLetters;
    const outputs = await this.#retry("process", () =>
      settleWithin(processor.process(valid), this.#options.processTimeoutMs, "a batch's processing"),
    );
    return outputs === undefined ? undefined : deadLetters.concat(outputs);
  }

  async #produceWithRetry(outputs: readonly ProduceRecord[]): Promise<void> {
    const sent = await this.#retry("produce", () => this.#options.producer.send(outputs).then(() => true));
    if (sent === undefined) throw new Error("stopped before outputs were acknowledged");
    const perTopic = new Map<string, number>();
    for (const { topic } of outputs) perTopic.set(topic, (perTopic.get(topic) ?? 0) + 1);
    for (const [topic, count] of perTopic) this.#options.metrics.produced.inc({ topic }, count);
  }

  /** Bounded retry with capped exponential backoff; undefined when the loop stopped meanwhile. */
  async #retry<R>(what: string, attempt: () => Promise<R>): Promise<R | undefined> {
    const { attemptsMax, logger } = this.#options;
    for (let attemptNumber = 1; ; attemptNumber++) {
      try {
        return await attempt();
      } catch (error) {
        if (error instanceof DeadlineError || attemptNumber >= attemptsMax) throw error;
        const delayMs = Math.min(100 * 2 ** (attemptNumber - 1), retryBackoffMaxMs);
        logger.warn(`${what} failed, retrying`, { error, attempt: attemptNumber, delayMs });
        await Bun.sleep(delayMs);
        if (!this.#running) return undefined;
      }
    }
  }

  #publishLag(): void {
    for (const { topic, partition, lag } of this.#consumer.lag()) {
      this.#options.metrics.lag.set({ topic, partition: String(partition) }, lag);
    }
  }
}
