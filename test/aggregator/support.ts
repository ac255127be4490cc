/**
 * Helpers for the aggregator's integration tests (the sender's use some): AlertMatched records,
 * per-test topics and clients, and which partitions a stage process owns.
 */
import { afterAll, expect } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { brokers, quiet, type TopicReader } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import type { TestSchema } from "../../harness/postgres.ts";
import { type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import {
  type AlertMatched,
  AlertMatchedSchema,
  type NotificationReady,
  NotificationReadySchema,
  Severity,
} from "../../src/gen/alerting/v1/alert_pb.ts";
import { Admin, type ConsumedRecord, Producer } from "../../src/kafka/index.ts";
import { deadLetterTopicSpec } from "../../src/runtime/topics.ts";

/**
 * A test file's producer, and the stage processes, readers and clients it records, in the file's
 * schema. After the file's tests the stages are stopped (each must exit 0) and the readers closed.
 */
export function useAggregatorFixture(db: TestSchema): {
  sql: Sql;
  producer: Producer;
  stages: StageProcess[];
  readers: TopicReader[];
  clientIds: string[];
} {
  const producer = new Producer({ brokers, logger: quiet });
  const stages: StageProcess[] = [];
  const readers: TopicReader[] = [];
  const clientIds: string[] = [];
  afterAll(async () => {
    const exitCodes = await Promise.all(stages.map((stage) => stopStage(stage)));
    await Promise.all(readers.map((reader) => reader.close()));
    await producer.close();
    expect(exitCodes).toEqual(stages.map(() => 0));
  });
  return { sql: db.sql, producer, stages, readers, clientIds };
}

export interface AggregatorTopics {
  input: string;
  output: string;
  group: string;
}

/** Fresh input and output topics (each with its .dlq) and a fresh consumer group for one test. */
export async function aggregatorTopics(prefix: string, partitions = 3): Promise<AggregatorTopics> {
  const run = uniqueName(prefix);
  const input = `${run}.alerts.matched`;
  const output = `${run}.notifications.ready`;
  const admin = new Admin(brokers, {}, quiet);
  try {
    await admin.createTopics(
      [input, output].flatMap((name) => [{ name, partitions }, deadLetterTopicSpec(name)]),
    );
  } finally {
    admin.close();
  }
  return { input, output, group: `${run}-aggregator` };
}

/** The input partitions a stage process owns now, replayed from its "partitions assigned/revoked" log lines. */
export function ownedPartitions(stage: StageProcess): Set<number> {
  const owned = new Set<number>();
  for (const line of stage.output) {
    const assigned = line.includes('"partitions assigned"');
    if (!assigned && !line.includes('"partitions revoked"')) continue;
    const listed = (JSON.parse(line) as { partitions: string }).partitions;
    for (const match of listed.matchAll(/\[(\d+)\]/g)) {
      if (assigned) owned.add(Number(match[1]));
      else owned.delete(Number(match[1]));
    }
  }
  return owned;
}

/** An aggregator process in the test file's schema. */
export function startAggregator(
  db: TestSchema,
  topics: AggregatorTopics,
  env: Record<string, string> = {},
): Promise<StageProcess> {
  return startStage("aggregator", {
    POSTGRES_URL: db.url,
    INPUT_TOPIC: topics.input,
    OUTPUT_TOPIC: topics.output,
    GROUP_ID: topics.group,
    ...env,
  });
}

/** A client and one rule owned by this test, so the rows it produces name real ids. */
export async function insertClientWithRule(
  sql: Sql,
  prefix: string,
): Promise<{ clientId: string; ruleId: string }> {
  const [client] = await sql<{ id: string }[]>`
    INSERT INTO clients (name) VALUES (${uniqueName(prefix)}) RETURNING id`;
  const clientId = (client as { id: string }).id;
  const [rule] = await sql<{ id: string }[]>`
    INSERT INTO rules (client_id, severity, source, name)
    VALUES (${clientId}, 'HIGH', ${uniqueName("src")}, 'cpu-high') RETURNING id`;
  return { clientId, ruleId: (rule as { id: string }).id };
}

export function alertMatched(fields: Partial<Omit<AlertMatched, "$typeName" | "$unknown">>): Uint8Array {
  return toBinary(
    AlertMatchedSchema,
    create(AlertMatchedSchema, {
      alertId: "alert",
      severity: Severity.HIGH,
      source: "billing-api",
      name: "cpu-high",
      context: { host: "db-1" },
      eventTimeUnixMs: BigInt(Date.now()),
      schemaVersion: 1,
      ...fields,
    }),
  );
}

export function decodeReady(record: ConsumedRecord): NotificationReady {
  return fromBinary(NotificationReadySchema, record.value ?? new Uint8Array(0));
}

export const text = (bytes: Uint8Array | null | undefined) => (bytes ? new TextDecoder().decode(bytes) : "");
