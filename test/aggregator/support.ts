/**
 * Helpers for the aggregator's integration tests (the sender's use some): AlertMatched records,
 * per-test topics and clients, and which partitions a stage process owns.
 */
import { afterAll, expect } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { brokers, quiet, type TopicReader } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
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
 * A test file's Postgres pool and producer, and the stage processes, readers and clients it records.
 * After the file's tests the stages are stopped (each must exit 0) and the readers closed; no sender
 * runs here, so the clients' RECEIVED rows are parked as FAILED for no sender to pick up later, and
 * their alert states deleted.
 */
export function useAggregatorFixture(rowLabel: string): {
  sql: Sql;
  producer: Producer;
  stages: StageProcess[];
  readers: TopicReader[];
  clientIds: string[];
} {
  const sql = connectPostgres({ idleTimeoutSeconds: 1 });
  const producer = new Producer({ brokers, logger: quiet });
  const stages: StageProcess[] = [];
  const readers: TopicReader[] = [];
  const clientIds: string[] = [];
  afterAll(async () => {
    const exitCodes = await Promise.all(stages.map((stage) => stopStage(stage)));
    await Promise.all(readers.map((reader) => reader.close()));
    await sql`
      UPDATE notifications SET status = 'FAILED', last_error = ${rowLabel}, next_attempt_at = NULL
      WHERE client_id = ANY(${clientIds}::uuid[]) AND status = 'RECEIVED'`;
    await sql`DELETE FROM alert_states WHERE client_id = ANY(${clientIds}::uuid[])`;
    await producer.close();
    await sql.end();
    expect(exitCodes).toEqual(stages.map(() => 0));
  });
  return { sql, producer, stages, readers, clientIds };
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

export function startAggregator(
  topics: AggregatorTopics,
  env: Record<string, string> = {},
): Promise<StageProcess> {
  return startStage("aggregator", {
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
