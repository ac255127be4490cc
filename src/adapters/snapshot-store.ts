import type { RedisClient } from "./redis.ts";

/** Where a rules snapshot lives in Redis; tests use their own prefix. */
export interface SnapshotKeys {
  snapshot: string;
  version: string;
  /** Pub/sub channel announcing a new version, so evaluators reload at once. */
  changed: string;
}

export function snapshotKeys(prefix = "rules:"): SnapshotKeys {
  return { snapshot: `${prefix}snapshot`, version: `${prefix}version`, changed: `${prefix}changed` };
}

// Atomic compare-and-set: snapshot and version change together, and only forwards.
const writeIfNewerScript = `
local current = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[2]) <= current then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1`;

/** Writes `bytes` as version `version` unless Redis already has that version or a newer one. */
export async function writeSnapshotIfNewer(
  redis: RedisClient,
  keys: SnapshotKeys,
  bytes: Uint8Array,
  version: bigint,
): Promise<boolean> {
  const written = await redis.eval(
    writeIfNewerScript,
    3,
    keys.snapshot,
    keys.version,
    keys.changed,
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    version.toString(),
  );
  return written === 1;
}

export async function readSnapshotVersion(
  redis: RedisClient,
  keys: SnapshotKeys,
): Promise<bigint | undefined> {
  const value = await redis.get(keys.version);
  return value === null ? undefined : BigInt(value);
}

/** The stored snapshot bytes, or undefined when there is none. */
export async function readSnapshotBytes(
  redis: RedisClient,
  keys: SnapshotKeys,
): Promise<Uint8Array | undefined> {
  const value = await redis.getBuffer(keys.snapshot);
  return value === null ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}
