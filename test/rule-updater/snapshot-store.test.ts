/**
 * writeSnapshotIfNewer against the real Redis: the bytes are staged under a key of their own, then swapped
 * in with the version by the compare-and-swap script. Each test has its own key prefix.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { uniqueName } from "../../harness/names.ts";
import { connectRedis, type RedisClient } from "../../src/adapters/redis.ts";
import {
  readSnapshotBytes,
  readSnapshotVersion,
  type SnapshotKeys,
  snapshotKeys,
  writeSnapshotIfNewer,
} from "../../src/adapters/snapshot-store.ts";

let redis: RedisClient;
const prefixes: string[] = [];

beforeAll(() => {
  redis = connectRedis();
});

afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

function ownKeys(name: string): SnapshotKeys {
  const prefix = `${uniqueName(`test-snapshot-store-${name}`)}:rules:`;
  prefixes.push(prefix);
  return snapshotKeys(prefix);
}

/** Every key under the snapshot key: the snapshot itself and any staged one. */
const keysUnder = (keys: SnapshotKeys) => redis.keys(`${keys.snapshot}*`);
const bytesOf = (text: string) => new TextEncoder().encode(text);

test("a newer version swaps in with its bytes, an older or equal one is refused, no staged key stays", async () => {
  const keys = ownKeys("cas");
  const subscriber = redis.duplicate();
  const announced: string[] = [];
  await subscriber.subscribe(keys.changed);
  subscriber.on("message", (_, version: string) => announced.push(version));
  try {
    const big = crypto.getRandomValues(new Uint8Array(65_536)).subarray(3, 60_003); // a view, not its buffer
    expect(await writeSnapshotIfNewer(redis, keys, big, 5n)).toBe(true);
    expect(await readSnapshotBytes(redis, keys)).toEqual(big);
    expect(await readSnapshotVersion(redis, keys)).toBe(5n);
    expect(await redis.pttl(keys.snapshot)).toBe(-1); // the staging key's expiry did not come along

    for (const version of [4n, 5n]) {
      expect(await writeSnapshotIfNewer(redis, keys, bytesOf(`older ${version}`), version)).toBe(false);
    }
    expect(await readSnapshotBytes(redis, keys)).toEqual(big);
    expect(await readSnapshotVersion(redis, keys)).toBe(5n);

    expect(await writeSnapshotIfNewer(redis, keys, bytesOf("six"), 6n)).toBe(true);
    expect(await readSnapshotBytes(redis, keys)).toEqual(bytesOf("six"));
    expect(await keysUnder(keys)).toEqual([keys.snapshot]);
    await Bun.sleep(50);
    expect(announced).toEqual(["5", "6"]);
  } finally {
    subscriber.disconnect();
  }
});

test("concurrent writers: the highest version wins with its own bytes", async () => {
  const keys = ownKeys("race");
  const versions = Array.from({ length: 40 }, (_, i) => BigInt(i + 1)).sort(() => Math.random() - 0.5);
  const written = await Promise.all(
    versions.map((version) => writeSnapshotIfNewer(redis, keys, bytesOf(`v${version}`), version)),
  );
  expect(written.some(Boolean)).toBe(true);
  expect(await readSnapshotVersion(redis, keys)).toBe(40n);
  expect(await readSnapshotBytes(redis, keys)).toEqual(bytesOf("v40"));
  expect(await keysUnder(keys)).toEqual([keys.snapshot]);
});

test("a version key that is not a number fails the write and leaves the snapshot alone", async () => {
  const keys = ownKeys("broken");
  await writeSnapshotIfNewer(redis, keys, bytesOf("kept"), 1n);
  await redis.set(keys.version, "not-a-number");
  await expect(writeSnapshotIfNewer(redis, keys, bytesOf("lost"), 2n)).rejects.toThrow("compare");
  expect(await readSnapshotBytes(redis, keys)).toEqual(bytesOf("kept"));
  // The staged bytes stay only until their expiry.
  const staged = (await keysUnder(keys)).filter((key) => key !== keys.snapshot);
  expect(staged).toHaveLength(1);
  expect(await redis.pttl(staged[0] as string)).toBeGreaterThan(0);
});
