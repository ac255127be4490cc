/**
 * Admin.describeTopics against the real broker: each test makes its own topics. Repeated calls read
 * the same figures and leave librdkafka's heap as it was, so each native metadata is freed.
 */
import { dlopen, ptr } from "bun:ffi";
import { expect, test } from "bun:test";
import { kafkaClients } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { eventually } from "../../harness/stages.ts";

const { admin } = kafkaClients();

test("an existing topic is described with its partition count and replication factor", async () => {
  const name = uniqueName("test-describe");
  await admin.createTopics([{ name, partitions: 2, replicationFactor: 1 }]);
  // The broker answering metadata may learn of the new topic a moment after the controller created it.
  expect(await eventually(() => admin.describeTopics([name]).has(name), 10_000)).toBe(true);
  expect(admin.describeTopics([name]).get(name)).toEqual({ partitions: 2, replicationFactor: 1 });
});

test("an unknown topic is missing from the result, and is not created by asking", async () => {
  const existing = uniqueName("test-describe");
  const unknown = uniqueName("test-describe-unknown");
  await admin.createTopics([{ name: existing, partitions: 1 }]);
  expect(await eventually(() => admin.describeTopics([existing]).has(existing), 10_000)).toBe(true);
  const described = admin.describeTopics([existing, unknown]);
  expect([...described.keys()]).toEqual([existing]);
  // The broker auto-creates topics: a request naming the unknown one would have made it.
  await Bun.sleep(1000);
  expect(admin.listTopics().some((t) => t.name === unknown)).toBe(false);
});

test("describing 200 times in a row reads the same figures every time", async () => {
  const names = await twoTopics();
  for (let i = 0; i < 200; i++) {
    const described = admin.describeTopics(names);
    expect(described.get(names[0] as string)).toEqual({ partitions: 2, replicationFactor: 1 });
    expect(described.get(names[1] as string)).toEqual({ partitions: 3, replicationFactor: 1 });
  }
});

// glibc's mallinfo2 returns its struct by value: on x86_64 the caller passes the result's address as
// a hidden first argument, hence ptr in and out. Bun allocates JS memory elsewhere, so the glibc heap
// is mostly librdkafka's, and rd_kafka_metadata allocates there.
test("describing frees each metadata: the native heap does not grow", async () => {
  expect(process.arch).toBe("x64"); // the calling convention above; every machine here is x86_64
  const libc = dlopen("libc.so.6", { mallinfo2: { args: ["ptr"], returns: "ptr" } }).symbols;
  const info = new BigUint64Array(10); // struct mallinfo2: ten size_t
  const heapInUse = () => {
    libc.mallinfo2(ptr(info));
    return Number(info[7]) + Number(info[4]); // uordblks (allocated) + hblkhd (mmapped)
  };
  const names = await twoTopics();
  admin.describeTopics(names);
  const before = heapInUse();
  for (let i = 0; i < 200; i++) admin.describeTopics(names);
  // Measured noise stays under 32 KiB; one metadata of the dev broker's dozens of topics is tens of
  // KiB, so 200 leaked ones would be megabytes.
  expect(heapInUse() - before).toBeLessThan(256 * 1024);
});

/** Two new topics, of 2 and 3 partitions, once the broker describes both. */
async function twoTopics(): Promise<string[]> {
  const names = [uniqueName("test-describe"), uniqueName("test-describe")];
  await admin.createTopics(names.map((name, i) => ({ name, partitions: i + 2 })));
  const bothThere = () => admin.describeTopics(names).size === names.length;
  expect(await eventually(bothThere, 10_000)).toBe(true);
  return names;
}
