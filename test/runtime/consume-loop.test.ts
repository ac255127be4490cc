/**
 * The shared stage loop against the real broker: outputs acknowledged before commits, invalid
 * records dead-lettered with their reason, an abandoned batch redelivered, nothing lost; commits at
 * most every commit interval, yet at once on stop and on revoke.
 */
import { expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, consumeOnceAssigned, kafkaClients, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { eventually } from "../../harness/stages.ts";
import { type ConsumedRecord, Consumer } from "../../src/kafka/index.ts";
import { ConsumeLoop, type ConsumeLoopOptions, type Processor } from "../../src/runtime/consume-loop.ts";
import { deadLetterHeaders, InvalidRecordError } from "../../src/runtime/dead-letter.ts";
import { DeadlineError } from "../../src/runtime/deadline.ts";
import { createStageMetrics } from "../../src/runtime/metrics.ts";
import { deadLetterTopic, deadLetterTopicSpec } from "../../src/runtime/topics.ts";

const text = (bytes: Uint8Array | null) => (bytes ? new TextDecoder().decode(bytes) : "");

/** Lost and duplicated ids among the records forwarded to the output topic. */
const countForwarded = (ids: readonly string[], forwarded: readonly ConsumedRecord[]) =>
  countDeliveries(
    ids,
    forwarded.map((r) => text(r.value)),
  );
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
  options: Partial<
    Pick<
      ConsumeLoopOptions<string>,
      "processConcurrencyMax" | "processTimeoutMs" | "commitIntervalMs" | "metrics"
    >
  > = {},
) {
  return new ConsumeLoop({
    ...options,
    metrics: options.metrics ?? createStageMetrics("test"),
    stage: "test",
    brokers,
    topic: input,
    groupId,
    processor,
    producer,
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

  const count = countForwarded(ids, forwarded);
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

test("the loop publishes the requests its consumer sent, by type, on the stage's metrics", async () => {
  const { input, output } = await topics();
  await producer.send([
    { topic: input, key: "k", value: new TextEncoder().encode(JSON.stringify({ id: "x" })) },
  ]);
  const metrics = createStageMetrics("test");
  const loop = loopFor(input, uniqueName("group"), passthrough(output), { metrics });
  const running = loop.start();
  const fetches = async () =>
    Number(
      /^kafka_requests_sent\{[^}]*client="consumer",request="Fetch"[^}]*\} (\d+)$/m.exec(
        await metrics.registry.metrics(),
      )?.[1] ?? 0,
    );
  const published = await eventually(async () => (await fetches()) > 0, 10_000);
  await loop.stop();
  await running;
  expect(published).toBe(true);
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
  const count = countForwarded(ids, forwarded);
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
  expect(countForwarded(ids, forwarded).lost).toEqual([]);
});

/** Sends `ids` as passthrough input, one send each `gapMs` apart, so that they make several batches. */
async function sendApart(input: string, ids: readonly string[], gapMs: number): Promise<void> {
  for (const id of ids) {
    await producer.send([{ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) }]);
    await Bun.sleep(gapMs);
  }
}

/** Offset commits the loop made (any outcome); the final commit of `stop` is not counted. */
async function commitCount(metrics: ReturnType<typeof createStageMetrics>): Promise<number> {
  return (await metrics.commits.get()).values.reduce((sum, { value }) => sum + value, 0);
}

test("offsets are committed at most every commit interval, and what is left at once on stop", async () => {
  const { input, output } = await topics();
  const ids = Array.from({ length: 12 }, (_, i) => `apart-${i}`);
  const groupId = uniqueName("group");
  const metrics = createStageMetrics("test");
  let batches = 0;
  const loop = loopFor(
    input,
    groupId,
    passthrough(output, async () => {
      batches++;
    }),
    { commitIntervalMs: 60_000, metrics },
  );
  const running = loop.start();
  const reader = drain(output, ids.length);
  await sendApart(input, ids, 100);
  const forwarded = await reader;
  // Several batches completed within the interval: only the first one's commit went out.
  expect(batches).toBeGreaterThan(1);
  expect(await commitCount(metrics)).toBe(1);
  await loop.stop();
  await running;
  expect(countForwarded(ids, forwarded).lost).toEqual([]);

  const again = new Consumer({ brokers, groupId, topics: [input], logger: quiet });
  const leftover = await consumeOnceAssigned(again, 3000);
  await again.close();
  expect(leftover).toEqual([]);
});

test("a member joining takes over without repeating acknowledged work, before the commit interval", async () => {
  const { input, output } = await topics();
  const groupId = uniqueName("group");
  const handled = { first: [] as string[], second: [] as string[] };
  const recording = (into: string[]) =>
    passthrough(output, async (batchIds) => {
      into.push(...batchIds);
    });
  const firstMetrics = createStageMetrics("test");
  const first = loopFor(input, groupId, recording(handled.first), {
    commitIntervalMs: 60_000,
    metrics: firstMetrics,
  });
  const firstRunning = first.start();
  const before = Array.from({ length: 300 }, (_, i) => `before-${i}`);
  await producer.send(
    before.map((id) => ({ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) })),
  );
  expect(await eventually(async () => (await producedCount(firstMetrics)) >= before.length, 20_000)).toBe(
    true,
  );
  await Bun.sleep(200); // the acknowledgements' completion runs just after the count

  // The second member's arrival revokes partitions from the first, which commits them then. Records
  // go on arriving until the second member has handled some: it got partitions.
  const second = loopFor(input, groupId, recording(handled.second), { commitIntervalMs: 60_000 });
  const secondRunning = second.start();
  const after: string[] = [];
  const deadline = performance.now() + 40_000;
  while (handled.second.length === 0 && performance.now() < deadline) {
    const id = `after-${after.length}`;
    after.push(id);
    await producer.send([{ topic: input, key: id, value: new TextEncoder().encode(JSON.stringify({ id })) }]);
    await Bun.sleep(50);
  }
  const forwarded = await drain(output, before.length + after.length);
  await Promise.all([first.stop(), second.stop()]);
  await Promise.all([firstRunning, secondRunning]);

  const count = countForwarded([...before, ...after], forwarded);
  expect(count.lost).toEqual([]);
  // Acknowledged before the rebalance, so committed on revoke: never handled again. (A record in
  // flight while its partition moved may be, as at-least-once allows.)
  expect(count.duplicated.filter((id) => id.startsWith("before-"))).toEqual([]);
  expect(handled.second.filter((id) => id.startsWith("before-"))).toEqual([]);
  expect(handled.second.length).toBeGreaterThan(0);
}, 90_000);

async function producedCount(metrics: ReturnType<typeof createStageMetrics>): Promise<number> {
  return (await metrics.produced.get()).values.reduce((sum, { value }) => sum + value, 0);
}
