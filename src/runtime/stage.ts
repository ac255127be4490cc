/**
 * Wires a consuming stage process: settings -> producer, consume loop, HTTP service, shutdown.
 * A stage's main.ts reads its own settings, builds its Processor and calls `runConsumerStage`.
 */
import { Producer } from "../kafka/index.ts";
import { envInt } from "./config.ts";
import {
  ConsumeLoop,
  defaultBatchWaitMs,
  defaultCommitIntervalMs,
  defaultProcessTimeoutMs,
  defaultRecordBytesMax,
  type Processor,
  statisticsIntervalMs,
} from "./consume-loop.ts";
import { checkLibrdkafka, infraUrls } from "./env.ts";
import { createLogger, type Logger, logLevelSetting, logRank } from "./log.ts";
import { createStageMetrics, type StageMetrics } from "./metrics.ts";
import { exitOnSignal, settingsOrExit, startService } from "./service.ts";

export interface ConsumerStageDefinition<T> {
  name: string;
  topic: string;
  groupId: string;
  /** Topics the stage produces to (dead letters aside), looked up before the first batch. */
  outputTopics?: readonly string[];
  /** Default of PROCESS_TIMEOUT_MS for this stage; see ConsumeLoopOptions.processTimeoutMs. */
  processTimeoutMs?: number;
  /** Default of BATCH_WAIT_MS for this stage; see defaultBatchWaitMs. */
  batchWaitMs?: number;
  /** See ConsumeLoopOptions.processConcurrencyMax; 1 unless the stage's processing is order-free. */
  processConcurrencyMax?: number;
  /**
   * Built once the shared pieces exist; `close` releases the stage's own clients. `failed` is work
   * the stage runs beside the loop (the sender's scheduler): when it rejects, the stage exits as it
   * does when the loop fails.
   */
  createProcessor(context: StageContext): Promise<{
    processor: Processor<T>;
    isReady?: () => boolean;
    close?: () => Promise<void>;
    failed?: Promise<never>;
  }>;
}

export interface StageContext {
  producer: Producer;
  metrics: StageMetrics;
  logger: Logger;
  /** PROCESS_TIMEOUT_MS as resolved for this stage: the bound for work beside the loop too. */
  processTimeoutMs: number;
}

/** The settings every consuming stage has besides its own (KAFKA_BROKERS and HTTP_HOST aside). */
function readSharedSettings(processTimeoutMsDefault: number, batchWaitMsDefault: number) {
  checkLibrdkafka();
  return {
    logRank: logRank[logLevelSetting()],
    httpPort: envInt("HTTP_PORT", 0, { min: 0, max: 65_535 }),
    // A batch's outputs are sent at once, and batches already gather for BATCH_WAIT_MS: lingering
    // longer than it takes to enqueue one batch only adds latency.
    producerLingerMs: envInt("PRODUCER_LINGER_MS", 2, { min: 0, max: 1000 }),
    processTimeoutMs: envInt("PROCESS_TIMEOUT_MS", processTimeoutMsDefault, { min: 100, max: 3_600_000 }),
    batchSizeMax: envInt("BATCH_SIZE_MAX", 2000, { min: 1, max: 100_000 }),
    batchWaitMs: envInt("BATCH_WAIT_MS", batchWaitMsDefault, { min: 0, max: 10_000 }),
    commitIntervalMs: envInt("COMMIT_INTERVAL_MS", defaultCommitIntervalMs, { min: 0, max: 60_000 }),
    inFlightBatchesMax: envInt("IN_FLIGHT_BATCHES_MAX", 4, { min: 1, max: 64 }),
    recordBytesMax: envInt("RECORD_BYTES_MAX", defaultRecordBytesMax, { min: 1024, max: 64 * 1024 * 1024 }),
  };
}

/**
 * Starts the stage and returns once it runs; the process exits on a signal or a fatal error, and
 * with exit code 2 before starting anything when a shared setting is bad.
 */
export async function runConsumerStage<T>(definition: ConsumerStageDefinition<T>): Promise<void> {
  const settings = settingsOrExit(definition.name, () =>
    readSharedSettings(
      definition.processTimeoutMs ?? defaultProcessTimeoutMs,
      definition.batchWaitMs ?? defaultBatchWaitMs,
    ),
  );
  const { processTimeoutMs } = settings;
  const logger = createLogger(definition.name, settings.logRank);
  const metrics = createStageMetrics(definition.name);
  const producer = new Producer({
    brokers: infraUrls.kafkaBrokers,
    clientId: definition.name,
    logger: logger.child("producer"),
    settings: { "linger.ms": settings.producerLingerMs },
    statisticsIntervalMs,
  });
  const {
    processor,
    isReady = () => true,
    close,
    failed,
  } = await definition.createProcessor({ producer, metrics, logger, processTimeoutMs });
  const loop = new ConsumeLoop({
    stage: definition.name,
    brokers: infraUrls.kafkaBrokers,
    topic: definition.topic,
    groupId: definition.groupId,
    processor,
    producer,
    metrics,
    logger,
    isReady,
    batchSizeMax: settings.batchSizeMax,
    batchWaitMs: settings.batchWaitMs,
    commitIntervalMs: settings.commitIntervalMs,
    inFlightBatchesMax: settings.inFlightBatchesMax,
    outputTopics: definition.outputTopics ?? [],
    processConcurrencyMax: definition.processConcurrencyMax ?? 1,
    processTimeoutMs,
    recordBytesMax: settings.recordBytesMax,
  });
  const service = startService({
    port: settings.httpPort,
    registry: metrics.registry,
    isReady: () => {
      const ready = isReady();
      metrics.ready.set(ready ? 1 : 0);
      return ready;
    },
  });
  logger.info("started", { topic: definition.topic, groupId: definition.groupId, httpPort: service.port });
  const shutdown = async () => {
    await loop.stop();
    await producer.close(1000);
    await close?.();
    await service.stop();
  };
  exitOnSignal(shutdown, logger);
  Promise.race([loop.start(), ...(failed ? [failed] : [])]).catch(async (error: unknown) => {
    logger.error("stage failed; exiting so a supervisor restarts it from the last commit", { error });
    process.exit(1);
  });
}
