/** Listing and replaying a dead-letter topic against the real broker. */
import { expect, test } from "bun:test";
import { brokers, kafkaClients, quiet } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { listDeadLetters, replayDeadLetters } from "../../src/adapters/dead-letters.ts";
import { Consumer } from "../../src/kafka/index.ts";
import { toDeadLetter as deadLetterRecord, InvalidRecordError } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";

const utf8 = new TextEncoder();
const { admin, producer } = kafkaClients();

test("dead letters are listed with their reason and replayed once to their source topic", async () => {
  const source = uniqueName("test-dlq-source");
  const dlq = deadLetterTopic(source);
  await admin.createTopics([
    { name: source, partitions: 2 },
    { name: dlq, partitions: 1 },
  ]);
  const originals = Array.from({ length: 5 }, (_, i) => ({
    topic: source,
    partition: i % 2,
    offset: 100 + i,
    key: utf8.encode(`k${i}`),
    value: utf8.encode(`broken-${i}`),
    headers: new Map([["trace", utf8.encode(`t${i}`)]]),
    timestampMs: Date.now(),
    assignmentEpoch: 1,
  }));
  await producer.send(
    originals.map((record, i) =>
      deadLetterRecord(record, new InvalidRecordError("value", `bad ${i}`), "evaluator", 1234),
    ),
  );

  const listed = await listDeadLetters(brokers, admin, dlq, 100, quiet);
  expect(listed.map((l) => l.reason)).toEqual(originals.map((_, i) => `value: bad ${i}`));
  expect(listed[0]).toMatchObject({
    stage: "evaluator",
    sourceTopic: source,
    sourcePartition: 0,
    sourceOffset: 100,
    failedAtMs: 1234,
  });
  expect(Object.keys(listed[0]?.headers ?? {})).toEqual(["trace"]);

  expect(await replayDeadLetters(brokers, admin, producer, dlq, { limit: 100 }, quiet)).toBe(5);
  // A second run finds nothing new: replay progress is committed.
  expect(await replayDeadLetters(brokers, admin, producer, dlq, { limit: 100 }, quiet)).toBe(0);

  const reader = new Consumer({ brokers, groupId: uniqueName("reader"), topics: [source], logger: quiet });
  const replayed = [];
  const deadline = performance.now() + 15_000;
  while (replayed.length < 5 && performance.now() < deadline)
    replayed.push(...(await reader.consume(100, 200)));
  replayed.push(...(await reader.consume(100, 500)));
  await reader.close();
  const decode = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes ?? new Uint8Array());
  expect(replayed.map((r) => decode(r.value)).sort()).toEqual(originals.map((o) => decode(o.value)).sort());
  expect(replayed.every((r) => [...r.headers.keys()].join() === "trace")).toBe(true);
}, 60_000);
