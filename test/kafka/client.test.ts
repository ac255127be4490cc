/**
 * The Kafka client against the real broker started by ./dev: every test makes its own topic and
 * consumer group, and counts what was lost and what was delivered twice.
 */
import { describe, expect, test } from "bun:test";
import { countDeliveries, offsetGaps } from "../../harness/invariants.ts";
import { brokers, kafkaClients, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { eventually } from "../../harness/stages.ts";
import { type ConsumedRecord, Consumer, KafkaError, Producer } from "../../src/kafka/index.ts";

const { admin, producer } = kafkaClients();

async function newTopic(partitions = 3): Promise<string> {
  const name = uniqueName("test-kafka");
  await admin.createTopics([{ name, partitions }]);
  return name;
}

function newConsumer(topic: string, groupId: string): Consumer {
  return new Consumer({
    brokers,
    groupId,
    topics: [topic],
    logger: quiet,
    settings: { "session.timeout.ms": 6000 },
  });
}

/** Consumes until `count` records arrived or `timeoutMs` passed. */
async function consumeUntil(
  consumer: Consumer,
  count: number,
  timeoutMs = 20_000,
): Promise<ConsumedRecord[]> {
  const seen: ConsumedRecord[] = [];
  const deadline = performance.now() + timeoutMs;
  while (seen.length < count && performance.now() < deadline) {
    seen.push(...(await consumer.consume(1000, 100)));
  }
  return seen;
}

const text = (bytes: Uint8Array | null) => (bytes ? new TextDecoder().decode(bytes) : null);
const bytesOf = (value: string) => new TextEncoder().encode(value);

describe("producer and consumer", () => {
  test("round trip keeps keys, values, headers and timestamps", async () => {
    const topic = await newTopic();
    const sentAt = Date.now();
    await producer.send([
      { topic, key: "k1", value: bytesOf("v1"), headers: { trace: "abc", raw: new Uint8Array([0, 255]) } },
      { topic, key: null, value: bytesOf("no key") },
      { topic, key: "k3", value: null },
    ]);
    const consumer = newConsumer(topic, uniqueName("group"));
    const records = await consumeUntil(consumer, 3);
    await consumer.close();
    expect(records).toHaveLength(3);
    const byValue = new Map(records.map((r) => [text(r.value), r]));
    const withHeaders = byValue.get("v1") as ConsumedRecord;
    expect(text(withHeaders.key)).toBe("k1");
    expect(text(withHeaders.headers.get("trace") ?? null)).toBe("abc");
    expect([...(withHeaders.headers.get("raw") ?? [])]).toEqual([0, 255]);
    expect(withHeaders.timestampMs).toBeGreaterThanOrEqual(sentAt - 1000);
    expect(byValue.get("no key")?.key).toBeNull();
    expect(byValue.get(null)?.value).toBeNull();
    expect(text(byValue.get(null)?.key ?? null)).toBe("k3");
  });

  test("the same key always lands on the same partition", async () => {
    const topic = await newTopic(6);
    const keys = Array.from({ length: 50 }, (_, i) => `client-${i}`);
    await producer.send(
      keys.flatMap((key) => [0, 1, 2].map((n) => ({ topic, key, value: bytesOf(`${key}/${n}`) }))),
    );
    const consumer = newConsumer(topic, uniqueName("group"));
    const records = await consumeUntil(consumer, keys.length * 3);
    await consumer.close();
    const partitionsByKey = new Map<string, Set<number>>();
    for (const r of records) {
      const key = text(r.key) as string;
      partitionsByKey.set(key, (partitionsByKey.get(key) ?? new Set()).add(r.partition));
    }
    expect(partitionsByKey.size).toBe(keys.length);
    for (const partitions of partitionsByKey.values()) expect(partitions.size).toBe(1);
    // murmur2 spreads 50 keys over more than one partition.
    expect(new Set(records.map((r) => r.partition)).size).toBeGreaterThan(1);
  });

  test("a 1 MiB record goes through intact", async () => {
    const topic = uniqueName("test-kafka-big");
    await admin.createTopics([
      { name: topic, partitions: 1, config: { "max.message.bytes": String(2 * 1024 * 1024) } },
    ]);
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await producer.send([{ topic, key: "big", value: big }]);
    const consumer = newConsumer(topic, uniqueName("group"));
    const [record] = await consumeUntil(consumer, 1);
    await consumer.close();
    expect(record?.value?.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(Buffer.from(record?.value as Uint8Array), Buffer.from(big))).toBe(0);
  });
});

test("each client counts the requests it sent, by type, from librdkafka's statistics", async () => {
  const topic = await newTopic(1);
  const counting = new Producer({ brokers, logger: quiet, statisticsIntervalMs: 100 });
  // One batch after another: each goes out in a produce request of its own.
  for (const value of ["a", "b", "c"]) await counting.send([{ topic, value: bytesOf(value) }]);
  const consumer = new Consumer({
    brokers,
    groupId: uniqueName("group"),
    topics: [topic],
    logger: quiet,
    statisticsIntervalMs: 100,
  });
  expect(await consumeUntil(consumer, 3)).toHaveLength(3);
  // The consumer's statistics arrive while it is being polled, as the consume loop always does.
  const counted = await eventually(async () => {
    await consumer.consume(1, 50);
    return (counting.requestCounts().Produce ?? 0) >= 3 && (consumer.requestCounts().Fetch ?? 0) >= 1;
  }, 5000);
  const produced = counting.requestCounts();
  const fetched = consumer.requestCounts();
  await consumer.close();
  await counting.close();
  expect(counted).toBe(true);
  expect(produced.Produce).toBeGreaterThanOrEqual(3);
  expect(fetched.Fetch).toBeGreaterThanOrEqual(1);
  // A producer fetches nothing, a consumer produces nothing: a count of zero is left out.
  expect(produced.Fetch).toBeUndefined();
  expect(fetched.Produce).toBeUndefined();
});

describe("waiting for records", () => {
  /** A consumer of a fresh one-partition topic that has its assignment and has read `warm-up`. */
  async function assignedConsumer(): Promise<{ topic: string; consumer: Consumer }> {
    const topic = await newTopic(1);
    await producer.send([{ topic, value: bytesOf("warm-up") }]);
    const consumer = newConsumer(topic, uniqueName("group"));
    expect(await consumeUntil(consumer, 1)).toHaveLength(1);
    return { topic, consumer };
  }
  /** Half of every wait below: a consume that took longer ran into its timeout. */
  const promptMs = 15_000;

  test("an idle consume is woken by a new record, not by its timeout", async () => {
    const { topic, consumer } = await assignedConsumer();
    const startedAt = performance.now();
    const waiting = consumer.consume(10, 2 * promptMs);
    await Bun.sleep(300);
    await producer.send([{ topic, value: bytesOf("late") }]);
    const records = await waiting;
    const elapsedMs = performance.now() - startedAt;
    await consumer.close();
    expect(records.map((r) => text(r.value))).toEqual(["late"]);
    expect(elapsedMs).toBeLessThan(promptMs);
  });

  test("records produced apart are gathered into one batch, handed on once recordsMax are in", async () => {
    const { topic, consumer } = await assignedConsumer();
    const startedAt = performance.now();
    const waiting = consumer.consume(3, 2 * promptMs, { gatherMs: 2 * promptMs });
    for (const value of ["a", "b", "c"]) {
      await producer.send([{ topic, value: bytesOf(value) }]);
      await Bun.sleep(200);
    }
    const records = await waiting;
    const elapsedMs = performance.now() - startedAt;
    await consumer.close();
    expect(records.map((r) => text(r.value))).toEqual(["a", "b", "c"]);
    expect(elapsedMs).toBeLessThan(promptMs);
  });

  test("a batch is handed on when its gathering time is over, and a wait ends when aborted", async () => {
    const { topic, consumer } = await assignedConsumer();
    await producer.send([{ topic, value: bytesOf("alone") }]);
    const startedAt = performance.now();
    const gathered = await consumer.consume(100, 2 * promptMs, { gatherMs: 300 });
    expect(gathered.map((r) => text(r.value))).toEqual(["alone"]);
    expect(performance.now() - startedAt).toBeLessThan(promptMs);

    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    const abortedAt = performance.now();
    expect(await consumer.consume(100, 2 * promptMs, { signal: abort.signal })).toEqual([]);
    expect(performance.now() - abortedAt).toBeLessThan(promptMs);
    await consumer.close();
  });
});

describe("commit semantics", () => {
  test("uncommitted records are redelivered after a restart, committed ones never", async () => {
    const topic = await newTopic(1);
    const groupId = uniqueName("group");
    await producer.send(
      Array.from({ length: 100 }, (_, i) => ({ topic, key: `k${i}`, value: bytesOf(String(i)) })),
    );

    const first = newConsumer(topic, groupId);
    const firstRecords = await consumeUntil(first, 100);
    expect(firstRecords).toHaveLength(100);
    // Durably processed: the first 60. Commit offset = last processed + 1.
    const sixtieth = firstRecords[59] as ConsumedRecord;
    await first.commit([
      { topic, partition: 0, offset: sixtieth.offset + 1, assignmentEpoch: sixtieth.assignmentEpoch },
    ]);
    await first.close();

    const second = newConsumer(topic, groupId);
    const redelivered = await consumeUntil(second, 40);
    await Bun.sleep(500);
    redelivered.push(...(await second.consume(1000, 200)));
    await second.close();
    expect(redelivered.map((r) => text(r.value))).toEqual(
      Array.from({ length: 40 }, (_, i) => String(60 + i)),
    );
    expect(offsetGaps(redelivered.map((r) => r.offset))).toEqual([]);
  });

  test("offsets consumed under a revoked assignment are never committed", async () => {
    const topic = await newTopic(1);
    const groupId = uniqueName("group");
    await producer.send([{ topic, key: "a", value: bytesOf("a") }]);
    const consumer = newConsumer(topic, groupId);
    const [record] = await consumeUntil(consumer, 1);
    expect(record).toBeDefined();
    const stale = { topic, partition: 0, offset: (record as ConsumedRecord).offset + 1, assignmentEpoch: -1 };
    expect(consumer.owns(topic, 0, -1)).toBe(false);
    await consumer.commit([stale]);
    expect(consumer.committed([{ topic, partition: 0 }])[0]?.offset).toBeLessThan(0);
    await consumer.close();
  });
});

describe("consumer groups", () => {
  test("members joining and leaving mid-stream lose nothing and repeat only uncommitted work", async () => {
    const topic = await newTopic(6);
    const groupId = uniqueName("group");
    const total = 6000;
    const ids = Array.from({ length: total }, (_, i) => `m${i}`);
    const processed: string[] = [];
    const committedIds = new Set<string>();
    const uncommitted = new Map<Consumer, ConsumedRecord[]>();

    const members: Consumer[] = [];
    const addMember = () => {
      const consumer = new Consumer({
        brokers,
        groupId,
        topics: [topic],
        logger: quiet,
        settings: { "session.timeout.ms": 6000 },
        rebalance: {
          // Everything this member processed is durable (we record it synchronously), so commit it.
          onRevoked: (partitions) => {
            const pending = uncommitted.get(consumer) ?? [];
            const revoked = new Set(partitions.map((p) => p.partition));
            const last = new Map<number, ConsumedRecord>();
            for (const r of pending) if (revoked.has(r.partition)) last.set(r.partition, r);
            uncommitted.set(
              consumer,
              pending.filter((r) => !revoked.has(r.partition)),
            );
            for (const r of pending) if (revoked.has(r.partition)) committedIds.add(text(r.value) as string);
            return [...last.values()].map((r) => ({
              topic,
              partition: r.partition,
              offset: r.offset + 1,
              assignmentEpoch: r.assignmentEpoch,
            }));
          },
        },
      });
      uncommitted.set(consumer, []);
      members.push(consumer);
      return consumer;
    };
    const step = async (consumer: Consumer) => {
      const records = await consumer.consume(200, 20);
      for (const r of records) processed.push(text(r.value) as string);
      uncommitted.get(consumer)?.push(...records);
      const last = new Map<number, ConsumedRecord>();
      for (const r of records) last.set(r.partition, r);
      const offsets = [...last.values()].map((r) => ({
        topic,
        partition: r.partition,
        offset: r.offset + 1,
        assignmentEpoch: r.assignmentEpoch,
      }));
      if (offsets.length > 0) {
        await consumer.commit(offsets);
        for (const r of records) committedIds.add(text(r.value) as string);
        uncommitted.set(consumer, []);
      }
    };

    const a = addMember();
    const b = addMember();
    let produced = 0;
    const produceSome = async (n: number) => {
      await producer.send(
        ids.slice(produced, produced + n).map((id) => ({ topic, key: id, value: bytesOf(id) })),
      );
      produced += n;
    };
    const runUntil = async (done: () => boolean) => {
      const deadline = performance.now() + 30_000;
      while (!done() && performance.now() < deadline) await Promise.all(members.map(step));
    };
    const distinct = () => new Set(processed).size;
    await produceSome(2000);
    await runUntil(() => distinct() >= 1000 && a.assignment().length > 0 && b.assignment().length > 0);
    expect(new Set([...a.assignment(), ...b.assignment()].map((p) => p.partition)).size).toBe(6);

    const c = addMember(); // a third member joins mid-stream
    await produceSome(2000);
    await runUntil(() => c.assignment().length > 0 && distinct() >= 3000);
    expect(c.assignment().length).toBeGreaterThan(0);

    await a.close(); // one member leaves
    members.splice(members.indexOf(a), 1);
    await produceSome(2000);
    await runUntil(() => distinct() >= total);
    for (const m of members) await m.close();

    const count = countDeliveries(ids, processed);
    expect(count.lost).toEqual([]);
    expect(count.unexpected).toEqual([]);
    expect(count.delivered).toBe(total);
    // Every record processed twice must have been uncommitted when its partition moved.
    for (const id of count.duplicated) expect(committedIds.has(id)).toBe(true);
  }, 90_000);
});

describe("typed errors", () => {
  test("producing to a topic that does not exist fails with a KafkaError", async () => {
    const lonely = new Producer({
      brokers,
      logger: quiet,
      deliveryTimeoutMs: 3000,
      settings: { "allow.auto.create.topics": false, "topic.metadata.propagation.max.ms": 1000 },
    });
    const missing = uniqueName("missing-topic");
    const error = await lonely.send([{ topic: missing, value: bytesOf("x") }]).catch((e: unknown) => e);
    await lonely.close(1000);
    expect(error).toBeInstanceOf(KafkaError);
    expect((error as KafkaError).errorName).toMatch(/UNKNOWN_TOPIC|MSG_TIMED_OUT/);
    expect(admin.listTopics().some((t) => t.name === missing)).toBe(false);
  });

  test("a broker that is not there gives a retryable KafkaError", async () => {
    const orphan = new Producer({ brokers: "127.0.0.1:1", logger: quiet, deliveryTimeoutMs: 1500 });
    const error = await orphan.send([{ topic: "anything", value: bytesOf("x") }]).catch((e: unknown) => e);
    await orphan.close(500);
    expect(error).toBeInstanceOf(KafkaError);
    expect((error as KafkaError).errorName).toBe("_MSG_TIMED_OUT");
    expect((error as KafkaError).retryable).toBe(true);
  });

  test("a bad configuration names the setting", () => {
    expect(() => new Producer({ brokers, logger: quiet, settings: { "no.such.setting": 1 } })).toThrow(
      /no.such.setting/,
    );
  });
});

describe("admin", () => {
  test("creating topics is idempotent and they are listed with their partitions", async () => {
    const name = uniqueName("test-admin");
    expect((await admin.createTopics([{ name, partitions: 4 }])).created).toEqual([name]);
    expect((await admin.createTopics([{ name, partitions: 4 }])).existing).toEqual([name]);
    expect(admin.listTopics().find((t) => t.name === name)?.partitions).toEqual([0, 1, 2, 3]);
  });
});
