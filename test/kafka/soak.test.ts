/**
 * A compressed soak: one million records through the producer and the consumer in one process.
 * Native memory must not leak: RSS after the run stays within a bound of RSS after warm-up.
 */
import { expect, test } from "bun:test";
import { uniqueName } from "../../harness/names.ts";
import { Admin, Consumer, Producer } from "../../src/kafka/index.ts";
import { infraUrls } from "../../src/runtime/env.ts";
import { createLogger } from "../../src/runtime/log.ts";

const recordsTotal = 1_000_000;
const batchSize = 10_000;
// Past the point where librdkafka's prefetch queue (queued.max.messages.kbytes) has filled.
const warmupRecords = 500_000;
const rssGrowthMaxBytes = 96 * 1024 * 1024;

test("1M records through producer and consumer keep RSS flat", async () => {
  const brokers = infraUrls.kafkaBrokers;
  const quiet = createLogger("soak", 40);
  const topic = uniqueName("test-soak");
  const admin = new Admin(brokers, {}, quiet);
  await admin.createTopics([{ name: topic, partitions: 6 }]);
  admin.close();

  const producer = new Producer({ brokers, logger: quiet });
  const consumer = new Consumer({ brokers, groupId: uniqueName("soak"), topics: [topic], logger: quiet });
  const value = new Uint8Array(100).fill(7);
  let produced = 0;
  let consumed = 0;
  let rssAfterWarmup = 0;
  const inFlight: Promise<void>[] = [];
  while (consumed < recordsTotal) {
    if (produced < recordsTotal && inFlight.length < 4) {
      const batch = Array.from({ length: batchSize }, (_, i) => ({
        topic,
        key: `k${(produced + i) % 1000}`,
        value,
      }));
      produced += batchSize;
      const sent = producer.send(batch);
      inFlight.push(sent);
      void sent.then(() => inFlight.splice(inFlight.indexOf(sent), 1));
    }
    const records = await consumer.consume(5000, 20);
    consumed += records.length;
    const last = records.at(-1);
    if (last)
      await consumer.commit([
        { topic, partition: last.partition, offset: last.offset + 1, assignmentEpoch: last.assignmentEpoch },
      ]);
    if (rssAfterWarmup === 0 && consumed >= warmupRecords) {
      Bun.gc(true);
      rssAfterWarmup = process.memoryUsage().rss;
    }
  }
  await Promise.all(inFlight);
  Bun.gc(true);
  const rssAtEnd = process.memoryUsage().rss;
  await consumer.close();
  await producer.close();
  console.log(
    `soak: ${consumed} records, RSS after warm-up ${(rssAfterWarmup / 2 ** 20).toFixed(0)} MiB, at end ${(rssAtEnd / 2 ** 20).toFixed(0)} MiB`,
  );
  expect(consumed).toBe(recordsTotal);
  expect(rssAtEnd - rssAfterWarmup).toBeLessThan(rssGrowthMaxBytes);
}, 180_000);
