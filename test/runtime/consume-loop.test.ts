/**
 * The shared stage loop against the real broker: outputs acknowledged before commits, invalid
 * records dead-lettered with their reason, an abandoned batch redelivered, nothing lost.
 */
import { expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, consumeOnceAssigned, kafkaClients, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { type ConsumedRecord, Consumer } from "../../src/kafka/index.ts";
import { ConsumeLoop, type ConsumeLoopOptions, type Processor } from "../../src/runtime/consume-loop.ts";
import { deadLetterHeaders, InvalidRecordError } from "../../src/runtime/dead-letter.ts";
import { DeadlineError } from "../../src/runtime/deadline.ts";
import { createStageMetrics } from "../../src/runtime/metrics.ts";
import { deadLetterTopic, deadLetterTopicSpec } from "../../src/runtime/topics.ts";

const text = (bytes: Uint8Array | null) => (bytes ? new TextDecoder().decode(bytes) : "");
const { admin, producer } = kafkaClients();

async function topics() {
  const input = uniqueName("test-loop-in");
  const output = uniqueName("test-loop-out");
  await admin.createTopics([
    { name: input, partitions: 3 },
    { name: output, partitions: 3 },
    deadLetterTopicSpec(input),
  ]);
  return { input, output };
}

/** Parses `{"id": ...}` and forwards the id to `output`; `gate` can hold a batch back. */
function passthrough(output: string, gate?: (ids: string[]) => Promise<void>): Processor<string> {
  return {
    decode(record: ConsumedRecord): string {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text(record.value));
      } catch {
        throw new InvalidRecordError("value", "not JSON");
      }
      const id = (parsed as { id?: unknown }).id;
      if (typeof id !== "string") throw new InvalidRecordError("id", "missing or not a string");
      return id;
    },
    async process(batch) {
      await gate?.(batch.map((d) => d.value));
      return batch.map((d) => ({ topic: output, key: d.value, value: new TextEncoder().encode(d.value) }));
    },
  };
}

async function drain(topic: string, expected: number, timeoutMs = 20_000): Promise<ConsumedRecord[]> {
  const consumer = new Consumer({ brokers, groupId: uniqueName("reader"), topics: [topic], logger: quiet });
  const seen: ConsumedRecord[] = [];
  const deadline = performance.now() + timeoutMs;
  while (seen.length < expected && performance.now() < deadline)
    seen.push(...(await consumer.consume(1000, 100)));
  // Anything beyond `expected` would be a duplicate: give it a moment to show up.
  seen.push(...(await consumer.consume(1000, 300)));
  await consumer.close();
  return seen;
}

function loopFor(
  input: string,
  groupId: string,
  processor: Processor<string>,
  options: Pick<ConsumeLoopOptions<string>, "processConcurrencyMax" | "processTimeoutMs"> = {},
) {
  return new ConsumeLoop({
    ...options,
    stage: "test",
    brokers,
    topic: input,
    groupId,
    processor,
    producer,
    metrics: createStageMetrics("test"),
    logger: quiet,
    batchSizeMax: 50,
    batchWaitMs: 10,
  });
}

test("valid records are forwarded once, invalid ones dead-lettered with the reason, all committed", async () => {
  const { input, output } = await topics();
  const ids = Array.from({ length: 500 }, (_, i) => `id-${i}`);
  const bad = ["{oops", JSON.stringify({ id: 7 }), ""];
  await producer.send([
    ...ids.map((id) => ({ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) })),
    ...bad.map((value, i) => ({ topic: input, key: `bad-${i}`, value: new TextEncoder().encode(value) })),
  ]);
  const groupId = uniqueName("group");
  const loop = loopFor(input, groupId, passthrough(output));
  const running = loop.start();
  const forwarded = await drain(output, ids.length);
  const deadLetters = await drain(deadLetterTopic(input), bad.length);
  await loop.stop();
  await running;

  const count = countDeliveries(
    ids,
    forwarded.map((r) => text(r.value)),
  );
  expect(count.lost).toEqual([]);
  expect(count.duplicated).toEqual([]);
  expect(deadLetters.map((r) => text(r.value)).sort()).toEqual([...bad].sort());
  const reasons = deadLetters.map((r) => text(r.headers.get(deadLetterHeaders.reason) ?? null)).sort();
  expect(reasons).toEqual(["id: missing or not a string", "value: not JSON", "value: not JSON"]);
  expect(deadLetters.every((r) => text(r.headers.get(deadLetterHeaders.topic) ?? null) === input)).toBe(true);

  // Everything was committed: a new member of the group finds nothing left to do.
  const again = new Consumer({ brokers, groupId, topics: [input], logger: quiet });
  const leftover = await consumeOnceAssigned(again, 3000);
  await again.close();
  expect(leftover).toEqual([]);
});

test("a batch abandoned at shutdown is not committed and is processed again after restart", async () => {
  const { input, output } = await topics();
  const ids = Array.from({ length: 30 }, (_, i) => `held-${i}`);
  const groupId = uniqueName("group");
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  // The first loop processes nothing: every batch waits on a gate that opens only after shutdown.
  const stuck = loopFor(
    input,
    groupId,
    passthrough(output, () => held),
  );
  const running = stuck.start();
  await producer.send(
    ids.map((id) => ({ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) })),
  );
  await Bun.sleep(3000);
  await stuck.stop(500);
  release();
  await running.catch(() => {});

  const restarted = loopFor(input, groupId, passthrough(output));
  const again = restarted.start();
  const forwarded = await drain(output, ids.length);
  await restarted.stop();
  await again;
  const delivered = new Set(forwarded.map((r) => text(r.value)));
  expect(ids.filter((id) => !delivered.has(id))).toEqual([]);
});

test("batches processed concurrently all complete, never more at once than allowed, and are committed", async () => {
  const { input, output } = await topics();
  const ids = Array.from({ length: 600 }, (_, i) => `c-${i}`);
  await producer.send(
    ids.map((id) => ({ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) })),
  );
  let running = 0;
  let runningMax = 0;
  const groupId = uniqueName("group");
  const loop = loopFor(
    input,
    groupId,
    passthrough(output, async () => {
      running++;
      runningMax = Math.max(runningMax, running);
      await Bun.sleep(30); // waits on I/O, as the aggregator's insert does
      running--;
    }),
    { processConcurrencyMax: 3 },
  );
  const done = loop.start();
  const forwarded = await drain(output, ids.length);
  await loop.stop();
  await done;
  const count = countDeliveries(
    ids,
    forwarded.map((r) => text(r.value)),
  );
  expect(count.lost).toEqual([]);
  expect(count.duplicated).toEqual([]);
  expect(runningMax).toBeGreaterThan(1);
  expect(runningMax).toBeLessThanOrEqual(3);
  const again = new Consumer({ brokers, groupId, topics: [input], logger: quiet });
  const leftover = await consumeOnceAssigned(again, 3000);
  await again.close();
  expect(leftover).toEqual([]);
});

test("a batch whose processing never settles fails the loop within the timeout, uncommitted", async () => {
  const { input, output } = await topics();
  const ids = Array.from({ length: 20 }, (_, i) => `hung-${i}`);
  const groupId = uniqueName("group");
  await producer.send(
    ids.map((id) => ({ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) })),
  );
  // A database call that never answers: the promise stays pending for good.
  const hung = loopFor(
    input,
    groupId,
    passthrough(output, () => new Promise<void>(() => {})),
    { processTimeoutMs: 1000 },
  );
  const startedAt = performance.now();
  const failure = await hung.start().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(DeadlineError);
  expect(performance.now() - startedAt).toBeLessThan(15_000);
  await hung.stop(100);

  // Nothing was committed: a fresh loop of the group forwards every record.
  const restarted = loopFor(input, groupId, passthrough(output));
  const again = restarted.start();
  const forwarded = await drain(output, ids.length);
  await restarted.stop();
  await again;
  expect(
    countDeliveries(
      ids,
      forwarded.map((r) => text(r.value)),
    ).lost,
  ).toEqual([]);
});
