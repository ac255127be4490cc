/**
 * The consume loop's failure table at work, against the real broker and real Postgres errors: a
 * processor whose insert Postgres refuses for some records (a smallint out of range, a check
 * constraint) has those records isolated and dead-lettered one at a time while every other record is
 * inserted and forwarded exactly once and everything is committed; a transient failure (the
 * connection killed, a serialization failure) is retried; a fatal one (a missing table, a failed
 * assertion) fails the loop at once, uncommitted.
 */
import { beforeAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, consumeOnceAssigned, kafkaClients, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { assert } from "../../src/core/assert.ts";
import { type ConsumedRecord, Consumer } from "../../src/kafka/index.ts";
import { ConsumeLoop, type Decoded, type Processor } from "../../src/runtime/consume-loop.ts";
import { deadLetterHeaders, InvalidRecordError } from "../../src/runtime/dead-letter.ts";
import { createStageMetrics, type StageMetrics } from "../../src/runtime/metrics.ts";
import { deadLetterTopic, deadLetterTopicSpec } from "../../src/runtime/topics.ts";

const utf8 = new TextEncoder();
const text = (bytes: Uint8Array | null | undefined) => (bytes ? new TextDecoder().decode(bytes) : "");
const { admin, producer } = kafkaClients();

// This file's own schema, unmigrated: its one table and rows are seen by no other test.
const db = useTestSchema("consume_failures", { migrated: false });
const { sql } = db;

beforeAll(async () => {
  // `label <> 'forbidden'` and smallint: two ways for Postgres to refuse a record for good.
  await sql.unsafe(`CREATE TABLE ${db.name}.processed (
    id text PRIMARY KEY,
    label text NOT NULL CHECK (label <> 'forbidden'),
    amount smallint NOT NULL
  )`);
});

interface Item {
  id: string;
  label: string;
  amount: number;
}

/**
 * Stores each batch in one idempotent statement (ON CONFLICT DO NOTHING), as the aggregator does,
 * and forwards the ids. `before` runs first in every call, to inject real failures.
 */
function storingProcessor(
  output: string,
  calls: Item[][],
  before: (call: number) => Promise<void> = async () => {},
): Processor<Item> {
  return {
    decode(record: ConsumedRecord): Item {
      const item = JSON.parse(text(record.value)) as Item;
      if (typeof item.id !== "string") throw new InvalidRecordError("id", "missing");
      return item;
    },
    async process(batch: readonly Decoded<Item>[]) {
      const items = batch.map((d) => d.value);
      calls.push(items);
      await before(calls.length);
      await sql`
        INSERT INTO processed (id, label, amount)
        SELECT * FROM unnest(${items.map((i) => i.id)}::text[], ${items.map((i) => i.label)}::text[],
                             ${items.map((i) => i.amount)}::int[])
        ON CONFLICT (id) DO NOTHING`;
      return items.map((item) => ({ topic: output, key: item.id, value: utf8.encode(item.id) }));
    },
  };
}

async function topics(prefix: string, partitions = 2) {
  const input = uniqueName(`${prefix}-in`);
  const output = uniqueName(`${prefix}-out`);
  await admin.createTopics([
    { name: input, partitions },
    { name: output, partitions },
    deadLetterTopicSpec(input),
  ]);
  return { input, output };
}

function loopFor(input: string, groupId: string, processor: Processor<Item>, metrics: StageMetrics) {
  return new ConsumeLoop({
    stage: "poison-test",
    brokers,
    topic: input,
    groupId,
    processor,
    producer,
    metrics,
    logger: quiet,
    batchSizeMax: 50,
    batchWaitMs: 10,
  });
}

async function send(input: string, items: readonly Item[]) {
  await producer.send(
    items.map((item) => ({ topic: input, key: item.id, value: utf8.encode(JSON.stringify(item)) })),
  );
}

/** Reads `topic` with a fresh group until `expected` records came, then a moment more for extras. */
async function drain(topic: string, expected: number, timeoutMs = 30_000): Promise<ConsumedRecord[]> {
  const consumer = new Consumer({ brokers, groupId: uniqueName("reader"), topics: [topic], logger: quiet });
  const seen: ConsumedRecord[] = [];
  const deadline = performance.now() + timeoutMs;
  while (seen.length < expected && performance.now() < deadline)
    seen.push(...(await consumer.consume(1000, 100)));
  seen.push(...(await consumer.consume(1000, 500)));
  await consumer.close();
  return seen;
}

/** What a new member of `groupId` would still be given: nothing once everything is committed. */
async function uncommitted(input: string, groupId: string): Promise<readonly ConsumedRecord[]> {
  const again = new Consumer({ brokers, groupId, topics: [input], logger: quiet });
  const leftover = await consumeOnceAssigned(again, 3000);
  await again.close();
  return leftover;
}

async function storedIds(ids: readonly string[]): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`SELECT id FROM processed WHERE id = ANY(${ids}::text[])`;
  return rows.map((r) => r.id);
}

test("records Postgres refuses for good are dead-lettered one at a time; the rest are stored and forwarded once", async () => {
  const { input, output } = await topics("poison");
  const run = uniqueName("p");
  const valid: Item[] = Array.from({ length: 300 }, (_, i) => ({
    id: `${run}-ok-${i}`,
    label: "fine",
    amount: i,
  }));
  const outOfRange: Item[] = [3, 77, 150].map((i) => ({
    id: `${run}-range-${i}`,
    label: "fine",
    amount: 70_000,
  }));
  const forbidden: Item[] = [4, 78, 199, 260].map((i) => ({
    id: `${run}-check-${i}`,
    label: "forbidden",
    amount: 1,
  }));
  // The poison records sit among the valid ones, two of them next to each other.
  const all = [...valid];
  for (const item of [...outOfRange, ...forbidden]) all.splice(Number(item.id.split("-").at(-1)), 0, item);
  await send(input, all);

  const calls: Item[][] = [];
  const metrics = createStageMetrics("poison-test");
  const groupId = uniqueName("group");
  const loop = loopFor(input, groupId, storingProcessor(output, calls), metrics);
  let settled = false;
  const running = loop.start().finally(() => {
    settled = true;
  });
  const poison = [...outOfRange, ...forbidden];
  const forwarded = await drain(output, valid.length);
  const deadLetters = await drain(deadLetterTopic(input), poison.length);

  // The loop is still running: no poison record stopped it.
  expect(settled).toBe(false);
  await loop.stop();
  await running;

  const count = countDeliveries(
    valid.map((i) => i.id),
    forwarded.map((r) => text(r.value)),
  );
  expect({ lost: count.lost, duplicated: count.duplicated, unexpected: count.unexpected }).toEqual({
    lost: [],
    duplicated: [],
    unexpected: [],
  });
  expect((await storedIds(all.map((i) => i.id))).sort()).toEqual(valid.map((i) => i.id).sort());

  // Each poison record exactly once, with its own reason, its original bytes and where it came from.
  expect(deadLetters.map((r) => text(r.key)).sort()).toEqual(poison.map((i) => i.id).sort());
  for (const record of deadLetters) {
    const id = text(record.key);
    const reason = text(record.headers.get(deadLetterHeaders.reason));
    const expected = id.includes("-range-")
      ? /^value: postgres 22003: smallint out of range$/
      : /^value: postgres 23514: new row for relation "processed" violates check constraint "processed_label_check" \(Failing row contains/;
    expect({ id, reason }).toEqual({ id, reason: expect.stringMatching(expected) });
    expect(text(record.headers.get(deadLetterHeaders.field))).toBe("value");
    expect(text(record.headers.get(deadLetterHeaders.stage))).toBe("poison-test");
    expect(text(record.headers.get(deadLetterHeaders.topic))).toBe(input);
    expect(JSON.parse(text(record.value))).toEqual(poison.find((i) => i.id === id));
  }
  const deadLettered = (await metrics.deadLettered.get()).values;
  expect(Object.fromEntries(deadLettered.map((v) => [v.labels.reason, v.value]))).toEqual({
    postgres_22: outOfRange.length,
    postgres_23: forbidden.length,
  });

  // Isolation by halves: far fewer calls than one per record, and within the documented bound.
  console.log(`poison: ${all.length} records, ${poison.length} refused, ${calls.length} process calls`);
  expect(calls.length).toBeLessThan(all.length);
  expect(calls.length).toBeLessThanOrEqual(2 * all.length - 1);
  // A poison record was tried alone exactly once: the call that made it a dead letter.
  for (const item of poison)
    expect(calls.filter((c) => c.length === 1 && c[0]?.id === item.id)).toHaveLength(1);

  // Everything, poison included, was committed.
  expect(await uncommitted(input, groupId)).toEqual([]);
}, 90_000);

test("a transient failure (connection killed, serialization failure) is retried, then the batch completes once", async () => {
  const { input, output } = await topics("transient", 1);
  const run = uniqueName("t");
  const items: Item[] = Array.from({ length: 40 }, (_, i) => ({
    id: `${run}-${i}`,
    label: "fine",
    amount: i,
  }));
  await send(input, items);
  const calls: Item[][] = [];
  const metrics = createStageMetrics("poison-test");
  const groupId = uniqueName("group");
  const loop = loopFor(
    input,
    groupId,
    storingProcessor(output, calls, async (call) => {
      // The first call loses its connection; the second hits a serialization failure. Both are real
      // Postgres failures: the first as postgres.js reports a closed connection, the second SQLSTATE 40001.
      if (call === 1) await sql`SELECT pg_terminate_backend(pg_backend_pid())`;
      if (call === 2)
        await sql.unsafe(`DO $$ BEGIN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END $$`);
    }),
    metrics,
  );
  const running = loop.start();
  const forwarded = await drain(output, items.length);
  await loop.stop();
  await running;

  const count = countDeliveries(
    items.map((i) => i.id),
    forwarded.map((r) => text(r.value)),
  );
  expect({ lost: count.lost, duplicated: count.duplicated }).toEqual({ lost: [], duplicated: [] });
  expect((await storedIds(items.map((i) => i.id))).length).toBe(items.length);
  // The same batch three times (not split: the failures were not about its records), no dead letter.
  expect(calls[0]).toEqual(calls[1] as Item[]);
  expect(calls[1]).toEqual(calls[2] as Item[]);
  expect((await metrics.deadLettered.get()).values).toEqual([]);
  expect(await uncommitted(input, groupId)).toEqual([]);
}, 60_000);

const fatalFailures: [string, () => Promise<void>, RegExp][] = [
  [
    "a missing table (Postgres 42P01)",
    () => sql`SELECT * FROM no_such_table`.then(() => {}),
    /no_such_table/,
  ],
  [
    "a failed assertion",
    async () => assert(false, "a batch must never be empty"),
    /a batch must never be empty/,
  ],
];

test.each(fatalFailures)(
  "a fatal failure, %s, fails the loop at once, without retry, uncommitted",
  async (_name, fail, message) => {
    const { input, output } = await topics("fatal", 1);
    const run = uniqueName("f");
    const items: Item[] = Array.from({ length: 10 }, (_, i) => ({
      id: `${run}-${i}`,
      label: "fine",
      amount: i,
    }));
    await send(input, items);
    const calls: Item[][] = [];
    const groupId = uniqueName("group");
    const loop = loopFor(
      input,
      groupId,
      storingProcessor(output, calls, fail),
      createStageMetrics("poison-test"),
    );
    const startedAt = performance.now();
    const failure = await loop.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    const elapsedMs = performance.now() - startedAt;
    await loop.stop(100);

    expect(String(failure)).toMatch(message);
    // One call: a transient failure would have been retried with backoff (0.1 s, 0.2 s, ...).
    expect(calls).toHaveLength(1);
    expect(elapsedMs).toBeLessThan(10_000);
    // Nothing was stored, dead-lettered or committed: a new member of the group gets every record.
    expect(await storedIds(items.map((i) => i.id))).toEqual([]);
    expect(admin.endOffsetTotal(deadLetterTopic(input))).toBe(0);
    expect((await uncommitted(input, groupId)).map((r) => text(r.key)).sort()).toEqual(
      items.map((i) => i.id).sort(),
    );
  },
  60_000,
);
