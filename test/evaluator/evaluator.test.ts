/**
 * The evaluator as a real process against the real broker and Redis: each test has its own topics,
 * consumer group and Redis key prefix, writes the rules snapshot itself, produces AlertNew records and
 * reads alerts.matched (and the dead-letter topic) back.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { countDeliveries } from "../../harness/invariants.ts";
import { uniqueName } from "../../harness/names.ts";
import { eventually, type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import { connectRedis, type RedisClient } from "../../src/adapters/redis.ts";
import { type SnapshotKeys, snapshotKeys, writeSnapshotIfNewer } from "../../src/adapters/snapshot-store.ts";
import { deriveAlertId } from "../../src/core/alert-id.ts";
import type { Rule } from "../../src/core/matching/types.ts";
import { DEFAULT_RULE_POLICY, type RulePolicy } from "../../src/core/policy.ts";
import { SEVERITY_WILDCARD } from "../../src/core/severity.ts";
import { buildSnapshot, encodeSnapshot } from "../../src/core/snapshot.ts";
import { type AlertMatched, AlertMatchedSchema, Severity } from "../../src/gen/alerting/v1/alert_pb.ts";
import { type ConsumedRecord, Producer } from "../../src/kafka/index.ts";
import { deadLetterHeaders } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";
import {
  alertBytes,
  brokers,
  createTopics,
  headerText,
  isRunning,
  killStage,
  metric,
  quiet,
  readyStatus,
  TopicReader,
  text,
  writeRules,
} from "./helpers.ts";

let redis: RedisClient;
let producer: Producer;
/** Per test: stopped and closed in afterEach. */
let stages: StageProcess[] = [];
let readers: TopicReader[] = [];
const ownedKeys: string[] = [];

beforeAll(() => {
  redis = connectRedis();
  producer = new Producer({ brokers, logger: quiet });
});

afterEach(async () => {
  await Promise.all(stages.map((s) => stopStage(s)));
  await Promise.all(readers.map((r) => r.close()));
  stages = [];
  readers = [];
});

afterAll(async () => {
  if (ownedKeys.length > 0) await redis.del(...ownedKeys);
  redis.disconnect();
  await producer.close();
});

interface Env {
  input: string;
  output: string;
  group: string;
  keys: SnapshotKeys;
  /** Environment for spawning this test's evaluator. */
  stageEnv: Record<string, string>;
  outputs: TopicReader;
}

/** This test's topics (input with its .dlq, output), group and Redis keys, and a reader of the output. */
async function environment(name: string): Promise<Env> {
  const run = uniqueName(`test-eval-${name}`);
  const input = `${run}.alerts.new`;
  const output = `${run}.alerts.matched`;
  await createTopics([{ name: input, dlq: true }, { name: output }]);
  const prefix = `${run}:rules:`;
  const keys = snapshotKeys(prefix);
  ownedKeys.push(keys.snapshot, keys.version);
  const outputs = new TopicReader(output);
  readers.push(outputs);
  const group = `${run}-evaluator`;
  return {
    input,
    output,
    group,
    keys,
    outputs,
    stageEnv: { INPUT_TOPIC: input, OUTPUT_TOPIC: output, GROUP_ID: group, RULES_KEY_PREFIX: prefix },
  };
}

async function evaluator(env: Env, extra: Record<string, string> = {}): Promise<StageProcess> {
  const stage = await startStage("evaluator", { ...env.stageEnv, ...extra });
  stages.push(stage);
  return stage;
}

function rule(clientId: string, severity: number, source: string, name: string): Rule {
  return { ruleId: crypto.randomUUID(), clientId, severity, source, name };
}

function decodeMatched(record: ConsumedRecord): AlertMatched {
  return fromBinary(AlertMatchedSchema, record.value ?? new Uint8Array(0));
}

/** "alertId/clientId" -> sorted rule ids, for every output record (throws on a repeated pair). */
function matchesByAlertAndClient(records: readonly ConsumedRecord[]): Map<string, string[]> {
  const byPair = new Map<string, string[]>();
  for (const record of records) {
    const matched = decodeMatched(record);
    expect(text(record.key)).toBe(matched.clientId);
    const pair = `${matched.alertId}/${matched.clientId}`;
    if (byPair.has(pair)) throw new Error(`two records for ${pair}`);
    byPair.set(pair, [...matched.ruleIds].sort());
  }
  return byPair;
}

async function produceAlerts(topic: string, alerts: readonly { id: string; bytes: Uint8Array }[]) {
  await producer.send(alerts.map((a) => ({ topic, key: a.id, value: a.bytes })));
}

test("exact and wildcard rules: one record per client with all of its matched rule ids, keyed by client", async () => {
  const env = await environment("match");
  const source = `svc-${crypto.randomUUID()}`;
  const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const rules = {
    aExact: rule(a, Severity.HIGH, source, "cpu"),
    aAnySeverity: rule(a, SEVERITY_WILDCARD, source, "cpu"),
    aAnyName: rule(a, Severity.HIGH, source, "*"),
    aLow: rule(a, Severity.LOW, source, "cpu"),
    bAnySource: rule(b, SEVERITY_WILDCARD, "*", "cpu"),
    bCritical: rule(b, Severity.CRITICAL, "*", "*"),
    cDisk: rule(c, Severity.HIGH, source, "disk"),
  };
  await writeRules(redis, env.keys, Object.values(rules), 1n);
  await evaluator(env);

  const alerts = [
    { id: "high-cpu", severity: Severity.HIGH, source, name: "cpu" },
    { id: "low-cpu", severity: Severity.LOW, source, name: "cpu" },
    { id: "critical-disk", severity: Severity.CRITICAL, source, name: "disk" },
    { id: "high-disk", severity: Severity.HIGH, source, name: "disk" },
    { id: "medium-memory-elsewhere", severity: Severity.MEDIUM, source: "elsewhere", name: "memory" },
    { id: "critical-cpu-elsewhere", severity: Severity.CRITICAL, source: "elsewhere", name: "cpu" },
    { id: "high-cpu-case", severity: Severity.HIGH, source: source.toUpperCase(), name: "CPU" },
  ];
  await produceAlerts(
    env.input,
    alerts.map(({ id, ...fields }) => ({
      id,
      bytes: alertBytes({ alertId: id, ...fields, context: { host: "db-1" } }),
    })),
  );
  const ids = (...list: Rule[]) => list.map((r) => r.ruleId).sort();
  const expected = new Map([
    [`high-cpu/${a}`, ids(rules.aExact, rules.aAnySeverity, rules.aAnyName)],
    [`high-cpu/${b}`, ids(rules.bAnySource)],
    [`low-cpu/${a}`, ids(rules.aAnySeverity, rules.aLow)],
    [`low-cpu/${b}`, ids(rules.bAnySource)],
    [`critical-disk/${b}`, ids(rules.bCritical)],
    [`high-disk/${a}`, ids(rules.aAnyName)],
    [`high-disk/${c}`, ids(rules.cDisk)],
    [`critical-cpu-elsewhere/${b}`, ids(rules.bAnySource, rules.bCritical)],
  ]);
  expect(await env.outputs.until((r) => r.length >= expected.size)).toBe(true);
  await Bun.sleep(300); // anything more would be a wrong extra record
  expect(matchesByAlertAndClient(env.outputs.records)).toEqual(expected);

  // The rest of the alert is forwarded as produced.
  const first = env.outputs.records.map(decodeMatched).find((m) => m.alertId === "high-cpu");
  expect(first?.severity).toBe(Severity.HIGH);
  expect(first?.source).toBe(source);
  expect(first?.name).toBe("cpu");
  expect(first?.context).toEqual({ host: "db-1" });
  expect(first?.schemaVersion).toBe(1);
}, 20_000);

test("rule settings: each route of a client gets its record and merged policy; a rule's mute window mutes its own route, now", async () => {
  const env = await environment("policy");
  const source = `svc-${crypto.randomUUID()}`;
  const [a, b, c, d] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const rules = {
    aGrouped: rule(a, Severity.HIGH, source, "*"),
    aQuiet: rule(a, SEVERITY_WILDCARD, source, "cpu"),
    bNow: rule(b, SEVERITY_WILDCARD, source, "*"),
    cPlain: rule(c, Severity.HIGH, source, "*"),
    cNow: rule(c, SEVERITY_WILDCARD, source, "cpu"),
    dEarlier: rule(d, SEVERITY_WILDCARD, source, "*"),
  };
  // Windows on today's clock (UTC, every day): one holding now, one that held 12 hours ago and is
  // closed now. Hours of margin either side, so a slow test cannot cross an edge.
  const hourMs = 3_600_000;
  const nowMs = Date.now();
  const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  const window = (fromMs: number, toMs: number) => `* ${clock(fromMs)}-${clock(toMs)}`;
  const holdingNow = window(nowMs - 2 * hourMs, nowMs + 2 * hourMs);
  const heldEarlier = window(nowMs - 14 * hourMs, nowMs - 10 * hourMs);
  const settings = (fields: Partial<RulePolicy>): RulePolicy => ({ ...DEFAULT_RULE_POLICY, ...fields });
  await writeRules(
    redis,
    env.keys,
    Object.values(rules),
    1n,
    [],
    [
      { ruleId: rules.aGrouped.ruleId, policy: settings({ groupBy: ["source"], groupWaitMs: 0 }) },
      { ruleId: rules.aQuiet.ruleId, policy: settings({ sendResolved: false, repeatIntervalMs: 60_000 }) },
      { ruleId: rules.bNow.ruleId, policy: settings({ muteWindows: [holdingNow] }) },
      { ruleId: rules.cNow.ruleId, policy: settings({ muteWindows: [holdingNow] }) },
      { ruleId: rules.dEarlier.ruleId, policy: settings({ muteWindows: [heldEarlier] }) },
    ],
  );
  const stage = await evaluator(env);

  // The windows are judged when the evaluator processes an alert, whatever its event time: an alert
  // that started 12 hours ago inside d's window is not muted by it now, and b's window mutes it.
  await produceAlerts(env.input, [
    { id: "now", bytes: alertBytes({ alertId: "now", source, name: "cpu", eventTimeUnixMs: BigInt(nowMs) }) },
    {
      id: "earlier",
      bytes: alertBytes({
        alertId: "earlier",
        source,
        name: "cpu",
        eventTimeUnixMs: BigInt(nowMs - 12 * hourMs),
      }),
    },
  ]);
  // Per alert: a and c two routes each, b and d one.
  expect(await env.outputs.until((r) => r.length >= 12)).toBe(true);
  await Bun.sleep(300); // anything more would be a wrong extra record
  const matched = env.outputs.records.map(decodeMatched);
  expect(matched).toHaveLength(12);
  for (const alert of ["now", "earlier"]) {
    const routeOf = (ruleId: string) =>
      matched.filter((m) => m.alertId === alert && m.ruleIds.join() === ruleId);
    // a: its rules group differently, so each is a route of its own, with its own settings.
    const [grouped] = routeOf(rules.aGrouped.ruleId);
    expect(grouped?.policy?.skipResolved).toBe(false);
    expect(grouped?.policy?.repeatIntervalMs).toBeUndefined();
    expect(grouped?.policy?.groupBy).toEqual(["source"]);
    expect(grouped?.policy?.groupWaitMs).toBe(0n);
    expect(grouped?.mutedByRule).toBe("");
    const [quiet] = routeOf(rules.aQuiet.ruleId);
    expect(quiet?.policy?.skipResolved).toBe(true);
    expect(quiet?.policy?.repeatIntervalMs).toBe(60_000n);
    expect(quiet?.policy?.groupBy).toEqual([]);
    // A rule with mute windows is a route of its own, named on the wire by its id; muted now.
    const [bMuted] = routeOf(rules.bNow.ruleId);
    expect(bMuted?.policy?.muteRuleId).toBe(rules.bNow.ruleId);
    expect(bMuted?.mutedByRule).toBe(rules.bNow.ruleId);
    // c's plain rule has no window: its own route, never muted, while c's windowed rule is muted.
    expect(routeOf(rules.cPlain.ruleId).map((m) => [m.mutedByRule, m.policy])).toEqual([["", undefined]]);
    expect(routeOf(rules.cNow.ruleId).map((m) => m.mutedByRule)).toEqual([rules.cNow.ruleId]);
    expect(routeOf(rules.dEarlier.ruleId).map((m) => m.mutedByRule)).toEqual([""]);
  }
  expect(await metric(stage.httpPort, "alerts_muted_total")).toBe(4);
}, 20_000);

test("scopes: a client sees only alerts of its own scope, of shared scopes granted to it, and internal ones", async () => {
  const env = await environment("scope");
  const source = `svc-${crypto.randomUUID()}`;
  const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  // A wildcard rule for every client: without scopes each would see every alert of the source.
  const rules = [a, b, c].map((clientId) => rule(clientId, SEVERITY_WILDCARD, source, "*"));
  const grants = [
    { scope: "ops", clientId: a },
    { scope: "ops", clientId: c },
  ];
  await writeRules(redis, env.keys, rules, 1n, grants);
  const stage = await evaluator(env);

  const scopes: Record<string, string> = {
    internal: "",
    "private-a": `client:${a}`,
    "private-b": `client:${b}`,
    "private-unknown": `client:${crypto.randomUUID()}`,
    "shared-ops": "shared:ops",
    "shared-ungranted": "shared:nobody",
  };
  const malformed = ["ops", `client:${a.toUpperCase()}`, "shared:Ops", `shared:ops ${a}`];
  await produceAlerts(env.input, [
    ...Object.entries(scopes).map(([id, scope]) => ({
      id,
      bytes: alertBytes({ alertId: id, source, name: "db_password", scope }),
    })),
    ...malformed.map((scope, i) => ({
      id: `malformed-${i}`,
      bytes: alertBytes({ alertId: `malformed-${i}`, source, name: "db_password", scope }),
    })),
  ]);
  const only = (...clients: string[]) => [...clients].sort();
  const expected: Record<string, string[]> = {
    internal: only(a, b, c),
    "private-a": only(a),
    "private-b": only(b),
    "private-unknown": [],
    "shared-ops": only(a, c),
    "shared-ungranted": [],
  };
  const total = Object.values(expected).flat().length;
  expect(await env.outputs.until((r) => r.length >= total)).toBe(true);
  expect(
    await eventually(
      async () => (await metric(stage.httpPort, "alerts_scope_malformed_total")) === malformed.length,
      5000,
    ),
  ).toBe(true);
  await Bun.sleep(300); // anything more would be a wrong extra record
  const seen: Record<string, string[]> = Object.fromEntries(Object.keys(expected).map((id) => [id, []]));
  for (const matched of env.outputs.records.map(decodeMatched)) {
    seen[matched.alertId]?.push(matched.clientId);
    // The scope is carried into alerts.matched, for the per-scope dedupe.
    expect(matched.scope).toBe(scopes[matched.alertId] as string);
  }
  for (const clients of Object.values(seen)) clients.sort();
  expect(seen).toEqual(expected);
  expect(env.outputs.records.length).toBe(total);

  // A grant is a snapshot change like a rule: granting b the scope lets b see the next ops alert.
  await writeRules(redis, env.keys, rules, 2n, [...grants, { scope: "ops", clientId: b }]);
  expect(
    await eventually(async () => (await metric(stage.httpPort, "rules_version_applied")) === 2, 5000),
  ).toBe(true);
  await produceAlerts(env.input, [
    { id: "ops-2", bytes: alertBytes({ alertId: "ops-2", source, name: "x", scope: "shared:ops" }) },
  ]);
  expect(await env.outputs.until((r) => r.length >= total + 3)).toBe(true);
  const second = env.outputs.records.slice(total).map(decodeMatched);
  expect(second.map((m) => m.clientId).sort()).toEqual(only(a, b, c));
}, 20_000);

test("without a snapshot it is not ready and consumes nothing; a snapshot makes it ready and it processes", async () => {
  const env = await environment("not-ready");
  const stage = await evaluator(env);
  const source = `svc-${crypto.randomUUID()}`;
  const ids = Array.from({ length: 20 }, (_, i) => `waiting-${i}`);
  await produceAlerts(
    env.input,
    ids.map((id) => ({ id, bytes: alertBytes({ alertId: id, source, name: "queue-depth" }) })),
  );
  for (let i = 0; i < 10; i++) {
    expect(await readyStatus(stage.httpPort)).toBe(503);
    await Bun.sleep(100);
  }
  expect(await metric(stage.httpPort, "stage_ready")).toBe(0);
  expect((await metric(stage.httpPort, "records_consumed_total")) ?? 0).toBe(0);
  expect(env.outputs.records).toEqual([]);
  expect(isRunning(stage)).toBe(true);

  const clientId = crypto.randomUUID();
  await writeRules(redis, env.keys, [rule(clientId, Severity.HIGH, source, "queue-depth")], 5n);
  expect(await eventually(async () => (await readyStatus(stage.httpPort)) === 200, 5000)).toBe(true);
  expect(await env.outputs.until((r) => r.length >= ids.length)).toBe(true);
  const seen = env.outputs.records.map(decodeMatched);
  expect(
    countDeliveries(
      ids,
      seen.map((m) => m.alertId),
    ).lost,
  ).toEqual([]);
  expect(new Set(seen.map((m) => m.clientId))).toEqual(new Set([clientId]));
  expect(await metric(stage.httpPort, "rules_version_applied")).toBe(5);
  expect(isRunning(stage)).toBe(true);
}, 20_000);

test("invalid records go to <input>.dlq with the field named and the original bytes; valid ones still flow", async () => {
  const env = await environment("dlq");
  const dlq = new TopicReader(deadLetterTopic(env.input));
  readers.push(dlq);
  const source = `svc-${crypto.randomUUID()}`;
  const clientId = crypto.randomUUID();
  await writeRules(redis, env.keys, [rule(clientId, SEVERITY_WILDCARD, source, "*")], 1n);
  const stage = await evaluator(env);

  const good = alertBytes({ alertId: "good-before", source, name: "cpu" });
  // Cut inside the name field: its length prefix then promises more bytes than remain.
  const named = alertBytes({
    alertId: "truncated",
    source,
    name: "a-rather-long-alert-name",
    eventTimeUnixMs: 0n,
  });
  const nameAt = Buffer.from(named).indexOf("a-rather-long-alert-name");
  const invalid: { key: string; value: Uint8Array; field: string }[] = [
    { key: "random", value: new Uint8Array([0xff, 0xff, 0xff, 0xff]), field: "AlertNew" },
    { key: "truncated", value: named.slice(0, nameAt + 5), field: "name" },
    {
      key: "severity-9",
      value: alertBytes({ alertId: "s9", severity: 9 as Severity, source, name: "cpu" }),
      field: "severity",
    },
    {
      key: "no-severity",
      value: alertBytes({ alertId: "s0", severity: Severity.UNSPECIFIED, source, name: "cpu" }),
      field: "severity",
    },
    { key: "no-source", value: alertBytes({ alertId: "nosrc", source: "", name: "cpu" }), field: "source" },
    { key: "no-name", value: alertBytes({ alertId: "noname", source, name: "" }), field: "name" },
    {
      key: "schema-2",
      value: alertBytes({ alertId: "v2", source, name: "cpu", schemaVersion: 2 }),
      field: "schema_version",
    },
    { key: "empty", value: new Uint8Array(0), field: "value" },
  ];
  await producer.send([
    { topic: env.input, key: "good-before", value: good },
    ...invalid.map((r) => ({ topic: env.input, key: r.key, value: r.value, headers: { trace: r.key } })),
  ]);
  expect(await dlq.until((r) => r.length >= invalid.length)).toBe(true);
  // Valid alerts produced after the bad ones are still processed.
  await produceAlerts(env.input, [
    { id: "good-after", bytes: alertBytes({ alertId: "good-after", source, name: "cpu" }) },
  ]);
  expect(await env.outputs.until((r) => r.length >= 2)).toBe(true);
  await Bun.sleep(200);
  expect(env.outputs.records.map((r) => decodeMatched(r).alertId)).toEqual(["good-before", "good-after"]);

  expect(dlq.records).toHaveLength(invalid.length);
  for (const expected of invalid) {
    const record = dlq.records.find((r) => text(r.key) === expected.key);
    expect(record).toBeDefined();
    if (record === undefined) continue;
    const reason = headerText(record, deadLetterHeaders.reason) ?? "";
    expect({ key: expected.key, field: headerText(record, deadLetterHeaders.field) }).toEqual({
      key: expected.key,
      field: expected.field,
    });
    expect(reason.startsWith(`${expected.field}: `)).toBe(true);
    // The original bytes (an empty value comes back as null or empty), and the original headers.
    expect(Buffer.from(record.value ?? new Uint8Array(0)).equals(Buffer.from(expected.value))).toBe(true);
    expect(headerText(record, "trace")).toBe(expected.key);
    expect(headerText(record, deadLetterHeaders.stage)).toBe("evaluator");
    expect(headerText(record, deadLetterHeaders.topic)).toBe(env.input);
  }
  expect(isRunning(stage)).toBe(true);
}, 20_000);

test("hot reload while alerts flow: a new snapshot takes effect within 1 s, switching cleanly", async () => {
  const env = await environment("reload");
  const source = `svc-${crypto.randomUUID()}`;
  const [oldClient, newClient, steadyClient] = [
    crypto.randomUUID(),
    crypto.randomUUID(),
    crypto.randomUUID(),
  ];
  const steady = rule(steadyClient, SEVERITY_WILDCARD, source, "*");
  const removed = rule(oldClient, Severity.HIGH, source, "load");
  const added = rule(newClient, Severity.HIGH, source, "load");
  await writeRules(redis, env.keys, [steady, removed], 10n);
  const stage = await evaluator(env);
  expect(await metric(stage.httpPort, "rules_version_applied")).toBe(10);

  // One partition, one alert at a time: input order is offset order.
  let streaming = true;
  let sequence = 0;
  const stream = (async () => {
    while (streaming) {
      const id = `load-${String(sequence++).padStart(6, "0")}`;
      await produceAlerts(env.input, [{ id, bytes: alertBytes({ alertId: id, source, name: "load" }) }]);
      await Bun.sleep(2);
    }
  })();
  expect(await env.outputs.until((r) => r.length >= 50)).toBe(true);

  const writtenAt = performance.now();
  expect(await writeRules(redis, env.keys, [steady, added], 11n)).toBe(true);
  let appliedAt = Number.NaN;
  await eventually(
    async () => {
      if ((await metric(stage.httpPort, "rules_version_applied")) !== 11) return false;
      appliedAt = performance.now();
      return true;
    },
    2000,
    2,
  );
  expect(await env.outputs.until((r) => r.some((record) => text(record.key) === newClient), 2000)).toBe(true);
  await Bun.sleep(500);
  streaming = false;
  await stream;
  const produced = sequence;
  expect(await env.outputs.until((r) => r.length >= 2 * produced, 5000)).toBe(true);

  const firstNew = env.outputs.records.findIndex((r) => text(r.key) === newClient);
  const latencyMs = (env.outputs.receivedAt[firstNew] as number) - writtenAt;
  console.log(
    `hot reload: version applied ${Math.round(appliedAt - writtenAt)} ms after the write (metric), ` +
      `first output under it read back ${Math.round(latencyMs)} ms after the write`,
  );
  expect(latencyMs).toBeLessThanOrEqual(1000);
  expect(appliedAt - writtenAt).toBeLessThanOrEqual(1000);

  // Every alert is matched by exactly one of the two versions, never both, never neither, and the
  // switch happens once in input order: the old rules up to some alert, the new ones after it.
  const clientsOf = new Map<string, Set<string>>();
  for (const record of env.outputs.records) {
    const matched = decodeMatched(record);
    const clients = clientsOf.get(matched.alertId) ?? new Set<string>();
    clientsOf.set(matched.alertId, clients.add(matched.clientId));
  }
  const versions: ("old" | "new")[] = [];
  for (let i = 0; i < produced; i++) {
    const clients = clientsOf.get(`load-${String(i).padStart(6, "0")}`) ?? new Set();
    expect(clients.has(steadyClient)).toBe(true);
    expect(clients.has(oldClient) !== clients.has(newClient)).toBe(true);
    versions.push(clients.has(oldClient) ? "old" : "new");
  }
  const switchAt = versions.indexOf("new");
  expect(switchAt).toBeGreaterThan(0);
  expect(versions.slice(switchAt).every((v) => v === "new")).toBe(true);
  expect(await metric(stage.httpPort, "rules_version_applied")).toBe(11);
  expect(await metric(stage.httpPort, "rules_loaded")).toBe(2);
}, 20_000);

test("a corrupt snapshot with a higher version is refused; matching goes on with the last good one", async () => {
  const env = await environment("corrupt");
  const source = `svc-${crypto.randomUUID()}`;
  const clientId = crypto.randomUUID();
  const good = rule(clientId, Severity.HIGH, source, "cpu");
  await writeRules(redis, env.keys, [good], 20n);
  const stage = await evaluator(env);

  // A snapshot cut short (a torn write), then plain garbage, each under a newer version.
  const next = encodeSnapshot(
    buildSnapshot([good, rule(crypto.randomUUID(), Severity.HIGH, source, "disk")], 21n, 0n),
  );
  expect(await writeSnapshotIfNewer(redis, env.keys, next.slice(0, next.length - 7), 21n)).toBe(true);
  await Bun.sleep(300);
  expect(await writeSnapshotIfNewer(redis, env.keys, crypto.getRandomValues(new Uint8Array(64)), 22n)).toBe(
    true,
  );
  await Bun.sleep(300);
  expect(await metric(stage.httpPort, "rules_version_applied")).toBe(20);
  expect(await readyStatus(stage.httpPort)).toBe(200);
  expect(stage.output.some((line) => line.includes("refusing a corrupt rules snapshot"))).toBe(true);

  await produceAlerts(env.input, [
    { id: "cpu-1", bytes: alertBytes({ alertId: "cpu-1", source, name: "cpu" }) },
    { id: "disk-1", bytes: alertBytes({ alertId: "disk-1", source, name: "disk" }) },
  ]);
  expect(await env.outputs.until((r) => r.length >= 1)).toBe(true);
  await Bun.sleep(300);
  expect(matchesByAlertAndClient(env.outputs.records)).toEqual(
    new Map([[`cpu-1/${clientId}`, [good.ruleId]]]),
  );
  expect(isRunning(stage)).toBe(true);

  // A good snapshot after the corrupt ones is applied again.
  const diskClient = crypto.randomUUID();
  await writeRules(redis, env.keys, [good, rule(diskClient, Severity.HIGH, source, "disk")], 23n);
  expect(
    await eventually(async () => (await metric(stage.httpPort, "rules_version_applied")) === 23, 2000),
  ).toBe(true);
  await produceAlerts(env.input, [
    { id: "disk-2", bytes: alertBytes({ alertId: "disk-2", source, name: "disk" }) },
  ]);
  expect(await env.outputs.until((r) => r.some((record) => text(record.key) === diskClient))).toBe(true);
}, 20_000);

test("kill -9 and restart with the same group: every input alert's output is present at least once", async () => {
  const env = await environment("restart");
  const source = `svc-${crypto.randomUUID()}`;
  const clientId = crypto.randomUUID();
  await writeRules(redis, env.keys, [rule(clientId, SEVERITY_WILDCARD, source, "*")], 1n);
  const first = await evaluator(env);

  const ids: string[] = [];
  const produceChunk = async (count: number) => {
    const chunk = Array.from({ length: count }, () => {
      const id = `r-${ids.length}`;
      ids.push(id);
      return { id, bytes: alertBytes({ alertId: id, source, name: `n-${ids.length % 7}` }) };
    });
    await produceAlerts(env.input, chunk);
  };
  // Alerts keep arriving while the evaluator is killed mid-stream.
  let streaming = true;
  const stream = (async () => {
    while (streaming) {
      await produceChunk(50);
      await Bun.sleep(10);
    }
  })();
  expect(await env.outputs.until((r) => r.length >= 300)).toBe(true);
  await killStage(first);
  const outputsAtKill = env.outputs.records.length;
  await Bun.sleep(200);
  streaming = false;
  await stream;
  await produceChunk(200);

  // The killed member's session (10 s) must expire before the group hands its partition over.
  await evaluator(env);
  const delivered = () => env.outputs.records.map((r) => decodeMatched(r).alertId);
  expect(await env.outputs.until(() => countDeliveries(ids, delivered()).lost.length === 0, 25_000)).toBe(
    true,
  );
  const count = countDeliveries(ids, delivered());
  expect(count.lost).toEqual([]);
  expect(count.unexpected).toEqual([]);
  console.log(
    `restart: ${ids.length} alerts, ${outputsAtKill} outputs before kill -9, ` +
      `${count.duplicated.length} re-emitted after restart`,
  );
}, 40_000);

test("an alert without alert_id gets the derived id; one with an id keeps it", async () => {
  const env = await environment("alert-id");
  const source = `svc-${crypto.randomUUID()}`;
  const clientId = crypto.randomUUID();
  await writeRules(redis, env.keys, [rule(clientId, SEVERITY_WILDCARD, source, "*")], 1n);
  await evaluator(env);
  const eventTimeUnixMs = 1_750_000_000_123n;
  await producer.send([
    {
      topic: env.input,
      key: "no-id",
      value: alertBytes({ severity: Severity.CRITICAL, source, name: "disk-full", eventTimeUnixMs }),
    },
    {
      topic: env.input,
      key: "with-id",
      value: alertBytes({ alertId: "given-id", source, name: "disk-full" }),
    },
  ]);
  expect(await env.outputs.until((r) => r.length >= 2)).toBe(true);
  const ids = env.outputs.records.map((r) => decodeMatched(r).alertId).sort();
  const derived = deriveAlertId(Severity.CRITICAL, source, "disk-full", eventTimeUnixMs);
  expect(derived).toMatch(/^[0-9a-f]{32}$/);
  expect(ids).toEqual([derived, "given-id"].sort());
  const derivedRecord = env.outputs.records.map(decodeMatched).find((m) => m.alertId === derived);
  expect(derivedRecord?.eventTimeUnixMs).toBe(eventTimeUnixMs);
  expect(derivedRecord?.clientId).toBe(clientId);
}, 20_000);
