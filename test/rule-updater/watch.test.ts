/**
 * The rule-updater's snapshot watch (startSnapshotWatch) in process, against the real Postgres and
 * Redis: a committed rule change reaches Redis through LISTEN alone, a wiped Redis is rebuilt by the
 * check, and a check that never settles fails the watch instead of stalling it for good.
 */
import { expect, test } from "bun:test";
import { quiet } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { connectRedis } from "../../src/adapters/redis.ts";
import { rulesChangedChannel } from "../../src/adapters/rule-source.ts";
import { readSnapshotVersion } from "../../src/adapters/snapshot-store.ts";
import { DeadlineError } from "../../src/runtime/deadline.ts";
import { RuleUpdater, startSnapshotWatch } from "../../src/stages/rule-updater/updater.ts";
import { fromScratch, insertRule, storedRulesOf, usePostgresFixture, useRedisFixture } from "./helpers.ts";

const db = useTestSchema("rule_watch");
const { sql, changes, ownClient } = usePostgresFixture(db, 4);
const { redis, ownKeys } = useRedisFixture("test-watch");

test("a committed rule change reaches Redis through LISTEN, with no rule.changed record and no check", async () => {
  const keys = ownKeys("listen");
  const clientId = await ownClient();
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  await updater.rebuild();
  const watch = await startSnapshotWatch(updater, quiet, {
    checkIntervalMs: 60_000,
    reconcileIntervalMs: 3_600_000,
    runTimeoutMs: 10_000,
  });
  try {
    // What the rule service's commit does (there the change and its NOTIFY commit together).
    await insertRule(changes, clientId, { name: "via-listen" });
    await changes`SELECT pg_notify(${rulesChangedChannel}, '')`;
    const expected = await fromScratch(sql, [clientId]);
    expect(expected).toHaveLength(1);
    expect(
      await eventually(async () => (await storedRulesOf(redis, keys, [clientId])).length === 1, 5000),
    ).toBe(true);
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);
  } finally {
    await watch.stop();
  }
}, 30_000);

test("keys wiped: the check rebuilds them within a check interval", async () => {
  const keys = ownKeys("wiped");
  const clientId = await ownClient();
  await insertRule(changes, clientId, { name: "survives-wipe" });
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  await updater.rebuild();
  const watch = await startSnapshotWatch(updater, quiet, {
    checkIntervalMs: 100,
    reconcileIntervalMs: 3_600_000,
    runTimeoutMs: 10_000,
  });
  try {
    await redis.del(keys.snapshot, keys.version);
    expect(
      await eventually(async () => (await readSnapshotVersion(redis, keys)) !== undefined, 2000, 10),
    ).toBe(true);
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(await fromScratch(sql, [clientId]));
  } finally {
    await watch.stop();
  }
}, 30_000);

test("a check that never settles rejects `failed` with a DeadlineError and the watch stops", async () => {
  // A Redis that accepts the connection and never answers, as one stalled mid-failover would.
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const mute = connectRedis(`redis://127.0.0.1:${silent.port}`);
  const updater = new RuleUpdater(sql, mute, ownKeys("silent"), quiet);
  const watch = await startSnapshotWatch(updater, quiet, {
    checkIntervalMs: 50,
    reconcileIntervalMs: 3_600_000,
    runTimeoutMs: 300,
  });
  try {
    const startedAt = performance.now();
    const failure = await watch.failed.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DeadlineError);
    expect((failure as DeadlineError).message).toBe("a snapshot check did not settle within 300 ms");
    expect(performance.now() - startedAt).toBeLessThan(3000);
  } finally {
    await watch.stop(500);
    mute.disconnect();
    silent.stop(true);
  }
}, 30_000);
