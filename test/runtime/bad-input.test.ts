/**
 * Hostile records on every consumed topic, against each real stage process: random bytes, a
 * truncated protobuf, an unsupported schema_version and a huge record (a valid message of about
 * 900 KB: accepted by Kafka, over the stages' 512 KiB limit), and for the alert topics text Postgres
 * cannot store (NUL, an unpaired surrogate) each go to `<topic>.dlq` with the field and the reason and
 * the original bytes; a valid record after them is still processed; on SIGTERM the stage exits 0
 * having committed past all of them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { brokers, consumeOnceAssigned, quiet, TopicReader } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageName, startStage, stopStage } from "../../harness/stages.ts";
import { connectRedis, type RedisClient } from "../../src/adapters/redis.ts";
import { snapshotKeys } from "../../src/adapters/snapshot-store.ts";
import {
  AlertMatchedSchema,
  AlertNewSchema,
  NotificationReadySchema,
  Severity,
} from "../../src/gen/alerting/v1/alert_pb.ts";
import { RuleAction, RuleChangedSchema } from "../../src/gen/alerting/v1/rule_pb.ts";
import { Admin, Consumer, Producer } from "../../src/kafka/index.ts";
import { defaultRecordBytesMax } from "../../src/runtime/consume-loop.ts";
import { deadLetterHeaders } from "../../src/runtime/dead-letter.ts";
import { deadLetterTopic, deadLetterTopicSpec } from "../../src/runtime/topics.ts";
import { headerText, metric, writeRules } from "../evaluator/helpers.ts";

const db = useTestSchema("bad_input");
let redis: RedisClient;
let admin: Admin;
let producer: Producer;
const readers: TopicReader[] = [];
const redisKeys: string[] = [];

beforeAll(() => {
  redis = connectRedis();
  admin = new Admin(brokers, {}, quiet);
  producer = new Producer({ brokers, logger: quiet });
});

afterAll(async () => {
  await Promise.all(readers.map((r) => r.close()));
  if (redisKeys.length > 0) await redis.del(...redisKeys);
  await producer.close();
  admin.close();
  redis.disconnect();
});

interface BadRecord {
  key: string;
  value: Uint8Array;
  field?: string;
  reason?: RegExp;
}

/** One consuming stage: its input, how to encode a valid input message, what else it needs. */
interface StageCase {
  stage: StageName;
  /** A valid message; `filler` goes into a string field, `schemaVersion` overrides the version. */
  message(run: string, options: { filler?: string; schemaVersion?: number }): Uint8Array;
  env(run: string, input: string): Promise<Record<string, string>>;
  /** Topics the stage writes to besides dead letters. */
  outputs?: (run: string) => string[];
  /** Bad records only this stage's message can carry. */
  stageSpecific?: (run: string) => BadRecord[];
}

/**
 * Alert text Postgres cannot store. `encode` makes the stage's message from alert fields;
 * `loneSurrogate` is how the stage refuses a surrogate code point in UTF-8 form (what an unpaired
 * surrogate becomes on the wire) in `name`.
 */
function unstorableText(
  run: string,
  encode: (fields: object) => Uint8Array,
  loneSurrogate: { field: string; reason: RegExp },
): BadRecord[] {
  return [
    {
      key: "nul-in-context",
      value: encode({ context: { db_password: "hunter\u00002" } }),
      field: "context.db_password",
      reason: /^context\.db_password: contains a NUL character at position 6$/,
    },
    { key: "nul-in-source", value: encode({ source: `${run}\u0000` }), field: "source", reason: /NUL/ },
    {
      key: "lone-surrogate-in-name",
      // name (field 4) emptied, then appended as 3 bytes: ED A0 80 is U+D800 in UTF-8 form.
      value: new Uint8Array(Buffer.concat([encode({ name: "" }), Buffer.from([0x22, 3, 0xed, 0xa0, 0x80])])),
      ...loneSurrogate,
    },
  ];
}

/** AlertNew's fields, which AlertMatched repeats. */
function alertFields(run: string, filler: string, schemaVersion: number) {
  return {
    alertId: `${run}-alert`,
    severity: Severity.HIGH,
    source: run,
    name: "cpu",
    context: { note: `a fairly long note to cut in half ${filler}` },
    eventTimeUnixMs: BigInt(Date.now()),
    schemaVersion,
  };
}

const cases: StageCase[] = [
  {
    stage: "evaluator",
    message: (run, { filler = "", schemaVersion = 1 }) =>
      toBinary(AlertNewSchema, create(AlertNewSchema, alertFields(run, filler, schemaVersion))),
    outputs: (run) => [`${run}.alerts.matched`],
    stageSpecific: (run) =>
      unstorableText(
        run,
        (fields) =>
          toBinary(AlertNewSchema, create(AlertNewSchema, { ...alertFields(run, "", 1), ...fields })),
        { field: "name", reason: /^name: is not valid UTF-8/ },
      ),
    async env(run, input) {
      const keys = snapshotKeys(`${run}:rules:`);
      redisKeys.push(keys.snapshot, keys.version);
      // The evaluator waits for a snapshot before it consumes anything.
      await writeRules(redis, keys, [], 1n);
      return {
        INPUT_TOPIC: input,
        OUTPUT_TOPIC: `${run}.alerts.matched`,
        GROUP_ID: `${run}-group`,
        RULES_KEY_PREFIX: `${run}:rules:`,
      };
    },
  },
  {
    stage: "aggregator",
    message: (run, { filler = "", schemaVersion = 1 }) => {
      return toBinary(
        AlertMatchedSchema,
        create(AlertMatchedSchema, {
          ...alertFields(run, filler, schemaVersion),
          clientId: crypto.randomUUID(),
          ruleIds: [crypto.randomUUID()],
        }),
      );
    },
    outputs: (run) => [`${run}.notifications.ready`],
    stageSpecific: (run) => {
      const matched = {
        ...alertFields(run, "", 1),
        clientId: crypto.randomUUID(),
        ruleIds: [crypto.randomUUID()],
      };
      return unstorableText(
        run,
        (fields) => toBinary(AlertMatchedSchema, create(AlertMatchedSchema, { ...matched, ...fields })),
        // The protobuf library's strict UTF-8 check refuses it before any field is looked at.
        { field: "value", reason: /^value: not an AlertMatched protobuf/ },
      );
    },
    env: async (run, input) => ({
      INPUT_TOPIC: input,
      OUTPUT_TOPIC: `${run}.notifications.ready`,
      GROUP_ID: `${run}-group`,
    }),
  },
  {
    stage: "sender",
    // No such notification: a valid record the sender claims nothing for, then commits.
    message: (run, { filler = "", schemaVersion = 1 }) =>
      toBinary(
        NotificationReadySchema,
        create(NotificationReadySchema, {
          notificationId: 9_000_000_000_000n,
          clientId: `${run}-client-with-a-long-name ${filler}`,
          alertId: `${run}-alert`,
          schemaVersion,
        }),
      ),
    env: async (run, input) => ({ INPUT_TOPIC: input, GROUP_ID: `${run}-group` }),
  },
  {
    stage: "rule-updater",
    message: (_run, { filler = "", schemaVersion = 1 }) =>
      toBinary(
        RuleChangedSchema,
        create(RuleChangedSchema, {
          ruleId: crypto.randomUUID(),
          clientId: `${crypto.randomUUID()} and a long tail ${filler}`,
          action: RuleAction.CREATED,
          version: 1n,
          changedAtUnixMs: BigInt(Date.now()),
          schemaVersion,
        }),
      ),
    async env(run, input) {
      const keys = snapshotKeys(`${run}:rules:`);
      redisKeys.push(keys.snapshot, keys.version);
      return { INPUT_TOPIC: input, GROUP_ID: `${run}-group`, RULES_KEY_PREFIX: `${run}:rules:` };
    },
  },
];

const utf8 = new TextEncoder();

describe.each(cases)("bad records on the input of $stage", (stageCase) => {
  test("go to the dead-letter topic with field, reason and original bytes; the stage goes on and commits past them", async () => {
    const run = uniqueName(`bad-${stageCase.stage}`);
    const input = `${run}.in`;
    await admin.createTopics(
      [input, ...(stageCase.outputs?.(run) ?? [])].flatMap((name) => [
        { name, partitions: 1 },
        deadLetterTopicSpec(name),
      ]),
    );
    const dlq = new TopicReader(deadLetterTopic(input));
    readers.push(dlq);
    const env = await stageCase.env(run, input);
    const stage = await startStage(stageCase.stage, { POSTGRES_URL: db.url, ...env });

    const valid = stageCase.message(run, {});
    const huge = stageCase.message(run, { filler: "x".repeat(900_000) });
    const bad: BadRecord[] = [
      { key: "random-bytes", value: utf8.encode("not a protobuf at all") },
      { key: "truncated", value: valid.slice(0, Math.floor(valid.length / 2)) },
      { key: "schema-99", value: stageCase.message(run, { schemaVersion: 99 }), field: "schema_version" },
      { key: "huge", value: huge, field: "value", reason: /exceeds the limit of 524288/ },
      ...(stageCase.stageSpecific?.(run) ?? []),
    ];
    expect(huge.length).toBeGreaterThan(defaultRecordBytesMax);
    await producer.send([
      ...bad.map(({ key, value }) => ({ topic: input, key, value, headers: { trace: key } })),
      { topic: input, key: "valid", value: valid },
    ]);

    expect(await dlq.until((records) => records.length >= bad.length, 30_000)).toBe(true);
    for (const expected of bad) {
      const record = dlq.records.find((r) => new TextDecoder().decode(r.key ?? undefined) === expected.key);
      expect(record).toBeDefined();
      if (!record) continue;
      const field = headerText(record, deadLetterHeaders.field) ?? "";
      const reason = headerText(record, deadLetterHeaders.reason) ?? "";
      if (expected.field)
        expect({ key: expected.key, field }).toEqual({ key: expected.key, field: expected.field });
      expect(reason.startsWith(`${field}: `) && reason.length > field.length + 2).toBe(true);
      if (expected.reason) expect(reason).toMatch(expected.reason);
      expect(Buffer.from(record.value ?? new Uint8Array()).equals(Buffer.from(expected.value))).toBe(true);
      expect(headerText(record, "trace")).toBe(expected.key);
      expect(headerText(record, deadLetterHeaders.stage)).toBe(stageCase.stage);
      expect(headerText(record, deadLetterHeaders.topic)).toBe(input);
    }

    // Everything, the valid record included, is processed and committed: the committed offset
    // reaches the end of the input once the stage has stopped gracefully.
    const end = admin.watermarks(input, 0).high;
    expect(end).toBe(bad.length + 1);
    const consumed = () => metric(stage.httpPort, "records_consumed_total").then((n) => n ?? 0);
    expect(await eventually(async () => (await consumed()) >= end, 30_000)).toBe(true);
    expect(await stopStage(stage, 5000)).toBe(0);
    const probe = new Consumer({ brokers, groupId: env.GROUP_ID as string, topics: [input], logger: quiet });
    try {
      let committed = -1;
      await eventually(() => {
        committed = probe.committed([{ topic: input, partition: 0 }])[0]?.offset ?? -1;
        return committed === end;
      }, 10_000);
      expect(committed).toBe(end);
      // And a member of the group is given nothing to redo.
      expect(await consumeOnceAssigned(probe, 500)).toEqual([]);
    } finally {
      await probe.close();
    }
    expect(dlq.records).toHaveLength(bad.length);
  }, 90_000);
});
