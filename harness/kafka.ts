/** The broker the tests use, a quiet logger, Kafka clients for a test file and a background topic reader. */
import { afterAll } from "bun:test";
import { Admin, type ConsumedRecord, Consumer, Producer } from "../src/kafka/index.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { createLogger } from "../src/runtime/log.ts";
import { uniqueName } from "./names.ts";
import { eventually } from "./stages.ts";

export const brokers = infraUrls.kafkaBrokers;
/** Errors only, so that test output shows what failed rather than routine logs. */
export const quiet = createLogger("test", 40);

/** An Admin and a Producer for the calling test file, closed after its last test. */
export function kafkaClients(): { admin: Admin; producer: Producer } {
  const admin = new Admin(brokers, {}, quiet);
  const producer = new Producer({ brokers, logger: quiet });
  afterAll(async () => {
    await producer.close();
    admin.close();
  });
  return { admin, producer };
}

/**
 * Consumes until `consumer` has partitions assigned (waiting up to `assignTimeoutMs`), then for
 * `waitMs` more, and returns what it read. A test's consumer should not be closed before its first
 * assignment: with Debian 12's librdkafka (2.0) destroying it could abort the whole test process
 * (confluentinc/librdkafka#4312, fixed in 2.3.0), so Consumer.close leaves such a handle undestroyed,
 * to the process's exit.
 */
export async function consumeOnceAssigned(
  consumer: Consumer,
  waitMs: number,
  assignTimeoutMs = 30_000,
): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  const deadline = performance.now() + assignTimeoutMs;
  while (consumer.assignment().length === 0 && performance.now() < deadline)
    records.push(...(await consumer.consume(1000, 100)));
  records.push(...(await consumer.consume(1000, waitMs)));
  return records;
}

/** Reads a topic from the start in the background with its own group, keeping every record it has seen. */
export class TopicReader {
  readonly records: ConsumedRecord[] = [];
  /** performance.now() at which each record (same index) was consumed. */
  readonly receivedAt: number[] = [];
  readonly #consumer: Consumer;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(topic: string) {
    const consumer = new Consumer({
      brokers,
      groupId: uniqueName("test-reader"),
      topics: [topic],
      logger: quiet,
    });
    this.#consumer = consumer;
    this.#loop = (async () => {
      while (this.#running) {
        const batch = await consumer.consume(1000, 20);
        const now = performance.now();
        for (const record of batch) {
          this.records.push(record);
          this.receivedAt.push(now);
        }
      }
    })();
  }

  /** Waits until `check(records)` holds; false on timeout. */
  until(check: (records: readonly ConsumedRecord[]) => boolean, timeoutMs = 10_000): Promise<boolean> {
    return eventually(() => check(this.records), timeoutMs, 10);
  }

  async close(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await this.#consumer.close();
  }
}
