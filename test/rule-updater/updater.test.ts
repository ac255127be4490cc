/**
 * The rule-updater against the real Postgres, Redis and broker: RuleUpdater in process, and the stage
 * as a real process. Each test has its own Redis key prefix, its own clients and rules, and (for the
 * process) its own rule.changed topic and group.
 */
import { expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, startStage, stopStage } from "../../harness/stages.ts";
import { connectRedis, type RedisClient } from "../../src/adapters/redis.ts";
import {
  readSnapshotBytes,
  readSnapshotVersion,
  type SnapshotKeys,
  writeSnapshotIfNewer,
} from "../../src/adapters/snapshot-store.ts";
import { buildSnapshot, decodeSnapshot, encodeSnapshot, snapshotRules } from "../../src/core/snapshot.ts";
import { RuleAction, RuleChangedSchema } from "../../src/gen/alerting/v1/rule_pb.ts";
import { Consumer, Producer } from "../../src/kafka/index.ts";
import { deadLetterHeaders } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";
import { RuleUpdater } from "../../src/stages/rule-updater/updater.ts";
import { brokers, createTopics, headerText, quiet, TopicReader, text } from "../evaluator/helpers.ts";
import {
  describeRules,
  enabledRulesOf,
  fromScratch,
  insertRule,
  ofClients,
  storedGrantsOf,
  storedRulesOf,
  storedSnapshot,
  usePostgresFixture,
  useRedisFixture,
} from "./helpers.ts";

const db = useTestSchema("rule_updater");
const { sql, changes, ownClient, ownSharedScope } = usePostgresFixture(db, 6);
const { redis, ownKeys } = useRedisFixture("test-updater");

/**
 * A Redis client that holds back its snapshot writes of even versions until a newer version has been
 * written (by a rebuild that started later) or `holdMaxMs` passed, so those writes land out of order.
 */
function withLaggyWrites(client: RedisClient, keys: SnapshotKeys, holdMaxMs: number): RedisClient {
  return new Proxy(client, {
    get(target, property) {
      if (property === "eval") {
        return async (...args: Parameters<RedisClient["eval"]>) => {
          const version = BigInt(String(args[args.length - 1]));
          if (version % 2n === 0n) {
            await eventually(
              async () => BigInt((await target.get(keys.version)) ?? "-1") > version,
              holdMaxMs,
              5,
            );
          }
          return target.eval(...args);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const severities = ["LOW", "MEDIUM", "HIGH", "CRITICAL", "*"];
const pick = <T>(values: readonly T[]): T => values[Math.floor(Math.random() * values.length)] as T;

test("two updaters rebuilding concurrently and out of order: version only grows, final snapshot = from scratch", async () => {
  const keys = ownKeys("two");
  const clientId = await ownClient();
  const ruleIds = [
    await insertRule(changes, clientId),
    await insertRule(changes, clientId, { name: "disk" }),
  ];
  const sqlB = db.connect({ connectionsMax: 4 });
  const redisA = connectRedis();
  const redisB = connectRedis();
  const updaters = [
    new RuleUpdater(sql, withLaggyWrites(redisA, keys, 300), keys, quiet),
    new RuleUpdater(sqlB, withLaggyWrites(redisB, keys, 300), keys, quiet),
  ];
  try {
    // Sample version and snapshot with one atomic MGET while the updaters race.
    const samples: { version: bigint; embedded: bigint }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [version, bytes] = await redis.mgetBuffer(keys.version, keys.snapshot);
        if (version && bytes) {
          samples.push({ version: BigInt(version.toString()), embedded: decodeSnapshot(bytes).version });
        }
        await Bun.sleep(1);
      }
    })();
    // The rules change while the rebuilds run.
    let mutating = true;
    const mutator = (async () => {
      for (let i = 0; mutating; i++) {
        if (i % 3 === 0) ruleIds.push(await insertRule(changes, clientId, { name: `n-${i}` }));
        else if (i % 3 === 1)
          await changes`UPDATE rules SET severity = ${pick(severities.slice(0, 4))} WHERE id = ${pick(ruleIds)}`;
        else await changes`DELETE FROM rules WHERE id = ${ruleIds.shift() as string}`;
        await Bun.sleep(3);
      }
    })();
    const results = await Promise.all(
      updaters.flatMap((updater) =>
        Array.from({ length: 2 }, async () => {
          const done = [];
          for (let i = 0; i < 5; i++) done.push(await updater.rebuild());
          return done;
        }),
      ),
    ).then((all) => all.flat());
    mutating = false;
    await mutator;
    // One more round after the last change: whichever version is highest must hold the final rules.
    results.push(...(await Promise.all(updaters.map((u) => u.rebuild()))));
    await Bun.sleep(30);
    sampling = false;
    await sampler;

    expect(results).toHaveLength(22);
    const refused = results.filter((r) => !r.written).length;
    expect(refused).toBeGreaterThan(0); // writes did land out of order, and the older ones were refused
    expect(samples.length).toBeGreaterThan(10);
    const backwards = samples.flatMap((sample, i) => {
      const before = samples[i - 1];
      return before !== undefined && sample.version < before.version
        ? [`${before.version} -> ${sample.version}`]
        : [];
    });
    expect(backwards).toEqual([]);
    // Snapshot and version change together: the bytes always carry the version beside them.
    expect(samples.filter((sample) => sample.embedded !== sample.version)).toEqual([]);

    const highest = results.map((r) => r.version).sort((x, y) => (x < y ? 1 : -1))[0];
    const stored = await storedSnapshot(redis, keys);
    expect(stored?.version).toBe(highest);
    expect(stored?.embeddedVersion).toBe(highest);
    expect(describeRules(ofClients(stored?.rules ?? [], [clientId]))).toEqual(
      await fromScratch(sql, [clientId]),
    );
    console.log(
      `two updaters: ${results.length} rebuilds, ${refused} refused as older, ${samples.length} version samples`,
    );
  } finally {
    redisA.disconnect();
    redisB.disconnect();
    await sqlB.end();
  }
}, 60_000);

test("after 1,000 random rule changes, rebuilt per batch, the snapshot equals a from-scratch build", async () => {
  const keys = ownKeys("random");
  const clients = [await ownClient(), await ownClient()];
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  const live: string[] = [];
  const sources = ["api", "db", "queue", "*"];
  const names = ["cpu", "disk", "memory", "latency", "errors", "*"];
  const counts = { create: 0, severity: 0, source: 0, name: 0, enabled: 0, delete: 0, conflict: 0 };
  const conflicts = new Set(["23505", "23514"]); // unique per client, not all wildcards
  const change = async () => {
    const kind = live.length < 5 ? 0 : Math.floor(Math.random() * 6);
    const id = pick(live);
    try {
      switch (kind) {
        case 0: {
          const [row] = await changes<{ id: string }[]>`
            INSERT INTO rules (client_id, severity, source, name, enabled)
            VALUES (${pick(clients)}, ${pick(severities)}, ${pick(sources)}, ${pick(names)}, ${Math.random() < 0.8})
            RETURNING id`;
          live.push((row as { id: string }).id);
          counts.create++;
          break;
        }
        case 1:
          await changes`UPDATE rules SET severity = ${pick(severities)}, version = version + 1 WHERE id = ${id}`;
          counts.severity++;
          break;
        case 2:
          await changes`UPDATE rules SET source = ${pick(sources)}, version = version + 1 WHERE id = ${id}`;
          counts.source++;
          break;
        case 3:
          await changes`UPDATE rules SET name = ${pick(names)}, version = version + 1 WHERE id = ${id}`;
          counts.name++;
          break;
        case 4:
          await changes`UPDATE rules SET enabled = NOT enabled, version = version + 1 WHERE id = ${id}`;
          counts.enabled++;
          break;
        default:
          await changes`DELETE FROM rules WHERE id = ${id}`;
          live.splice(live.indexOf(id), 1);
          counts.delete++;
      }
    } catch (error) {
      if (!conflicts.has((error as { code?: string }).code ?? "")) throw error;
      counts.conflict++;
    }
  };

  await updater.rebuild();
  let previous = (await readSnapshotVersion(redis, keys)) as bigint;
  let applied = 0;
  let batches = 0;
  while (applied < 1000) {
    // One consumed batch of rule.changed events: the changes, then one rebuild.
    const size = Math.min(1000 - applied, 1 + Math.floor(Math.random() * 80));
    for (let i = 0; i < size; i++) await change();
    applied += size;
    batches++;
    const result = await updater.rebuild();
    expect(result.written).toBe(true);
    expect(result.version > previous).toBe(true);
    previous = result.version;
    expect(await storedRulesOf(redis, keys, clients)).toEqual(await enabledRulesOf(sql, clients));
  }
  const final = await storedRulesOf(redis, keys, clients);
  expect(final.length).toBeGreaterThan(0);
  expect(final).toEqual(await fromScratch(sql, clients));
  console.log(
    `random changes: ${JSON.stringify(counts)} in ${batches} batches, ${final.length} enabled rules`,
  );
}, 60_000);

test("keys deleted (this prefix's FLUSHALL): reconcile, and the stage's own check, rebuild them", async () => {
  const keys = ownKeys("wiped");
  const clientId = await ownClient();
  await insertRule(changes, clientId, { severity: "*", name: "wiped" });
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  const first = await updater.rebuild();

  await redis.del(keys.snapshot, keys.version);
  expect(await readSnapshotVersion(redis, keys)).toBeUndefined();
  expect(await updater.reconcile()).toBe("repaired");
  const stored = await storedSnapshot(redis, keys);
  expect(stored?.version !== undefined && stored.version > first.version).toBe(true);
  expect(describeRules(ofClients(stored?.rules ?? [], [clientId]))).toEqual(
    await fromScratch(sql, [clientId]),
  );

  // What the stage's watch does on a missing version: a plain rebuild.
  await redis.del(keys.snapshot, keys.version);
  expect((await updater.rebuild()).written).toBe(true);
  expect(await storedRulesOf(redis, keys, [clientId])).toEqual(await fromScratch(sql, [clientId]));

  // Only the version lost: the snapshot alone is not trusted either.
  await redis.del(keys.version);
  expect(await updater.reconcile()).toBe("repaired");
  expect(await storedRulesOf(redis, keys, [clientId])).toEqual(await fromScratch(sql, [clientId]));
}, 60_000);

test("reconcile repairs drift: other rules, a rule missing, a corrupt snapshot", async () => {
  const keys = ownKeys("drift");
  const clientId = await ownClient();
  const kept = await insertRule(changes, clientId, { name: "kept" });
  await insertRule(changes, clientId, { name: "also-kept", severity: "LOW" });
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  await updater.rebuild();
  const expected = await fromScratch(sql, [clientId]);
  expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);

  /** Replaces the stored snapshot in place (same version), as a manual edit would. */
  const overwrite = async (bytes: Uint8Array) => {
    await redis.set(keys.snapshot, Buffer.from(bytes));
  };
  const current = async () => (await storedSnapshot(redis, keys)) ?? { version: 0n, rules: [] };

  // 1. Different rules: a rule that does not exist in the database, and another client's row changed.
  {
    const { version, rules } = await current();
    const edited = rules.map((r) => (r.ruleId === kept ? { ...r, name: "edited-by-hand" } : r));
    edited.push({ ruleId: crypto.randomUUID(), clientId, severity: 3, source: "ghost", name: "ghost" });
    await overwrite(encodeSnapshot(buildSnapshot(edited, version, 0n)));
    expect(await storedRulesOf(redis, keys, [clientId])).not.toEqual(expected);
    expect(await updater.reconcile()).toBe("repaired");
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);
  }
  // 2. A rule missing (a lost rule.changed event).
  {
    const { version, rules } = await current();
    await overwrite(
      encodeSnapshot(
        buildSnapshot(
          rules.filter((r) => r.ruleId !== kept),
          version,
          0n,
        ),
      ),
    );
    expect(await updater.reconcile()).toBe("repaired");
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);
  }
  // 3. Corrupt bytes: a torn write, then garbage.
  for (const corrupt of [
    (bytes: Uint8Array) => bytes.slice(0, Math.floor(bytes.length / 2)),
    () => crypto.getRandomValues(new Uint8Array(256)),
  ]) {
    const { version, rules } = await current();
    await overwrite(corrupt(encodeSnapshot(buildSnapshot(rules, version, 0n))));
    expect(await updater.reconcile()).toBe("repaired");
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);
  }
}, 60_000);

test("reconcile repairs grants that drifted while the rules did not", async () => {
  const keys = ownKeys("grant-drift");
  const clientId = await ownClient();
  await insertRule(changes, clientId, { name: "granted" });
  const scope = await ownSharedScope([clientId]);
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  await updater.rebuild();
  const expected = [`${scope.name} ${clientId}`];
  expect(await storedGrantsOf(redis, keys, [clientId])).toEqual(expected);
  // The same rules without any grant, as a lost notification would leave them.
  const stored = decodeSnapshot((await readSnapshotBytes(redis, keys)) as Uint8Array);
  await redis.set(
    keys.snapshot,
    Buffer.from(encodeSnapshot({ ...stored, grantScopes: [], grantClient: new Uint32Array(0) })),
  );
  expect(await storedGrantsOf(redis, keys, [clientId])).toEqual([]);
  expect(await updater.reconcile()).toBe("repaired");
  expect(await storedGrantsOf(redis, keys, [clientId])).toEqual(expected);
}, 60_000);

/**
 * A drifted snapshot whose version is ahead of the build sequence (Redis kept while Postgres was
 * restored or re-created, or a hand-written snapshot with a higher version): the fresh build is refused
 * as older, so reconcile() moves the sequence past the stored version and builds again.
 */
test("reconcile repairs a drifted snapshot whose version is ahead of the build sequence", async () => {
  const keys = ownKeys("ahead");
  const clientId = await ownClient();
  await insertRule(changes, clientId, { name: "real" });
  const updater = new RuleUpdater(sql, redis, keys, quiet);
  const built = await updater.rebuild();
  const ghost = { ruleId: crypto.randomUUID(), clientId, severity: 3, source: "ghost", name: "ghost" };
  const aheadVersion = built.version + 1_000_000n;
  await writeSnapshotIfNewer(
    redis,
    keys,
    encodeSnapshot(buildSnapshot([ghost], aheadVersion, 0n)),
    aheadVersion,
  );

  const outcome = await updater.reconcile();
  expect({ outcome, rules: await storedRulesOf(redis, keys, [clientId]) }).toEqual({
    outcome: "repaired",
    rules: await fromScratch(sql, [clientId]),
  });
}, 60_000);

test("the stage process rebuilds its wiped keys within 2 s without any rule event", async () => {
  const run = uniqueName("test-updater-proc-wipe");
  const topic = `${run}.rule.changed`;
  await createTopics([{ name: topic, dlq: true }]);
  const keys = ownKeys("proc-wipe");
  const clientId = await ownClient();
  await insertRule(changes, clientId, { name: "survives-wipe" });
  const stage = await startStage("rule-updater", {
    POSTGRES_URL: db.url,
    INPUT_TOPIC: topic,
    GROUP_ID: `${run}-updater`,
    RULES_KEY_PREFIX: keys.snapshot.slice(0, -"snapshot".length),
    SNAPSHOT_WATCH_INTERVAL_MS: "200",
  });
  try {
    const expected = await fromScratch(sql, [clientId]);
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);
    await redis.del(keys.snapshot, keys.version);
    const wipedAt = performance.now();
    expect(
      await eventually(async () => (await readSnapshotVersion(redis, keys)) !== undefined, 2000, 10),
    ).toBe(true);
    const backAfterMs = performance.now() - wipedAt;
    expect(await storedRulesOf(redis, keys, [clientId])).toEqual(expected);
    console.log(`stage rebuilt wiped keys after ${Math.round(backAfterMs)} ms`);
  } finally {
    expect(await stopStage(stage)).toBe(0);
  }
}, 60_000);

test("the stage process applies a grant change announced on the rules channel within 1 s", async () => {
  const run = uniqueName("test-updater-proc-grant");
  const topic = `${run}.rule.changed`;
  await createTopics([{ name: topic, dlq: true }]);
  const keys = ownKeys("proc-grant");
  const clientId = await ownClient();
  await insertRule(changes, clientId, { name: "granted-later" });
  const stage = await startStage("rule-updater", {
    POSTGRES_URL: db.url,
    INPUT_TOPIC: topic,
    GROUP_ID: `${run}-updater`,
    RULES_KEY_PREFIX: keys.snapshot.slice(0, -"snapshot".length),
  });
  try {
    expect(await storedGrantsOf(redis, keys, [clientId])).toEqual([]);
    const grantedAt = performance.now();
    const scope = await ownSharedScope([clientId]); // grants, then NOTIFY as the API does
    const expected = [`${scope.name} ${clientId}`];
    expect(
      await eventually(async () => (await storedGrantsOf(redis, keys, [clientId])).length > 0, 1000, 10),
    ).toBe(true);
    console.log(`grant applied after ${Math.round(performance.now() - grantedAt)} ms`);
    expect(await storedGrantsOf(redis, keys, [clientId])).toEqual(expected);
    await changes`DELETE FROM scope_grants WHERE scope_id = ${scope.id}`;
    await changes`SELECT pg_notify('rule_outbox', '')`;
    expect(
      await eventually(async () => (await storedGrantsOf(redis, keys, [clientId])).length === 0, 1000, 10),
    ).toBe(true);
  } finally {
    expect(await stopStage(stage)).toBe(0);
  }
}, 60_000);

/** The group's committed offset of partition 0, read after the stage has left the group. */
async function committedOffset(group: string, topic: string): Promise<number | undefined> {
  const reader = new Consumer({ brokers, groupId: group, topics: [topic], logger: quiet });
  try {
    return reader.committed([{ topic, partition: 0 }])[0]?.offset;
  } finally {
    await reader.close();
  }
}

test("the stage commits a rule.changed offset only once Redis has the snapshot", async () => {
  const run = uniqueName("test-updater-proc-commit");
  const topic = `${run}.rule.changed`;
  const group = `${run}-updater`;
  await createTopics([{ name: topic, dlq: true }]);
  const keys = ownKeys("proc-commit");
  const clientId = await ownClient();
  const env = {
    POSTGRES_URL: db.url,
    INPUT_TOPIC: topic,
    GROUP_ID: group,
    RULES_KEY_PREFIX: keys.snapshot.slice(0, -"snapshot".length),
  };
  const producer = new Producer({ brokers, logger: quiet });
  const dlq = new TopicReader(deadLetterTopic(topic));
  try {
    // 1. Redis cannot take the snapshot (the version key is not a number, so the write script fails):
    //    the event is retried, and nothing is committed.
    let stage = await startStage("rule-updater", env);
    const ruleId = await insertRule(changes, clientId, { name: "committed" });
    await redis.set(keys.version, "not-a-number");
    const event = create(RuleChangedSchema, {
      ruleId,
      clientId,
      action: RuleAction.CREATED,
      version: 1n,
      changedAtUnixMs: BigInt(Date.now()),
      schemaVersion: 1,
    });
    await producer.send([{ topic, key: ruleId, value: toBinary(RuleChangedSchema, event) }]);
    const retried = () => stage.output.some((line) => line.includes('"message":"process failed, retrying"'));
    expect(await eventually(retried, 10_000)).toBe(true);
    // The snapshot from the start is still there, without the rule.
    const bytes = (await readSnapshotBytes(redis, keys)) as Uint8Array;
    expect(snapshotRules(decodeSnapshot(bytes)).some((r) => r.ruleId === ruleId)).toBe(false);
    const firstExit = await stopStage(stage);
    expect(await committedOffset(group, topic)).toBeLessThan(0); // none
    expect(firstExit).toBe(0); // a retried batch is abandoned on shutdown, not committed

    // 2. Redis works again: after a restart the event is processed, the snapshot written, the offset
    //    (and that of an undecodable record after it, dead-lettered) committed.
    await redis.del(keys.version);
    await producer.send([{ topic, key: "garbage", value: new Uint8Array([0xff, 0xff]) }]);
    stage = await startStage("rule-updater", env);
    const rebuilds = () =>
      stage.output.filter((line) => line.includes('"message":"rules snapshot rebuilt"')).length;
    expect(await eventually(() => rebuilds() >= 2, 10_000)).toBe(true); // at start, then for the batch
    expect(await dlq.until((r) => r.length >= 1)).toBe(true);
    expect((await storedSnapshot(redis, keys))?.rules.some((r) => r.ruleId === ruleId)).toBe(true);
    expect(text(dlq.records[0]?.key ?? null)).toBe("garbage");
    expect(headerText(dlq.records[0] as never, deadLetterHeaders.stage)).toBe("rule-updater");
    expect(await stopStage(stage)).toBe(0);
    expect(await committedOffset(group, topic)).toBe(2);
  } finally {
    await producer.close();
    await dlq.close();
  }
}, 25_000);
