/**
 * Helpers for the stage integration tests in test/evaluator and test/rule-updater (stages are spawned
 * with harness/stages.ts): topics, scraping /metrics, building alerts and writing snapshots.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { brokers, quiet } from "../../harness/kafka.ts";
import type { StageProcess } from "../../harness/stages.ts";
import type { RedisClient } from "../../src/adapters/redis.ts";
import { type SnapshotKeys, writeSnapshotIfNewer } from "../../src/adapters/snapshot-store.ts";
import type { Grant, Rule } from "../../src/core/matching/types.ts";
import { buildSnapshot, encodeSnapshot, type RulePolicyEntry } from "../../src/core/snapshot.ts";
import { type AlertNew, AlertNewSchema, Severity } from "../../src/gen/alerting/v1/alert_pb.ts";
import { Admin, type ConsumedRecord } from "../../src/kafka/index.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";

// Re-exported for the evaluator and rule-updater tests, which import them from here.
export { brokers, quiet, TopicReader } from "../../harness/kafka.ts";

/** kill -9: no shutdown, no final commit. */
export async function killStage(stage: StageProcess): Promise<void> {
  stage.process.kill("SIGKILL");
  await stage.process.exited;
}

export function isRunning(stage: StageProcess): boolean {
  return stage.process.exitCode === null && stage.process.signalCode === null;
}

/** Creates topics (and, for each consumed one, its `.dlq`), one partition each unless given. */
export async function createTopics(
  specs: readonly { name: string; partitions?: number; dlq?: boolean }[],
): Promise<void> {
  const admin = new Admin(brokers, {}, quiet);
  try {
    await admin.createTopics(
      specs.flatMap((s) => [
        { name: s.name, partitions: s.partitions ?? 1 },
        ...(s.dlq ? [{ name: deadLetterTopic(s.name), partitions: 1 }] : []),
      ]),
    );
  } finally {
    admin.close();
  }
}

/** One sample of a Prometheus gauge/counter (first series whose labels contain `labels`). */
export async function metric(port: number, name: string, labels = ""): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] === name && (match[2] ?? "").includes(labels)) return Number(match[3]);
  }
  return undefined;
}

export async function readyStatus(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
}

export type AlertInit = Partial<Omit<AlertNew, "$typeName" | "$unknown">>;

/** AlertNew bytes, HIGH and schema 1 unless given. */
export function alertBytes(init: AlertInit): Uint8Array {
  return toBinary(
    AlertNewSchema,
    create(AlertNewSchema, {
      severity: Severity.HIGH,
      eventTimeUnixMs: BigInt(Date.now()),
      schemaVersion: 1,
      ...init,
    }),
  );
}

/**
 * Encodes `rules`, `grants` and the rules' `policies` as snapshot `version` and writes it if newer;
 * returns whether it was written.
 */
export function writeRules(
  redis: RedisClient,
  keys: SnapshotKeys,
  rules: readonly Rule[],
  version: bigint,
  grants: readonly Grant[] = [],
  policies: readonly RulePolicyEntry[] = [],
): Promise<boolean> {
  return writeSnapshotIfNewer(
    redis,
    keys,
    encodeSnapshot(buildSnapshot(rules, version, BigInt(Date.now()), grants, [], policies)),
    version,
  );
}

export function headerText(record: ConsumedRecord, name: string): string | undefined {
  const value = record.headers.get(name);
  return value === undefined ? undefined : new TextDecoder().decode(value);
}

export function text(bytes: Uint8Array | null): string {
  return bytes === null ? "" : new TextDecoder().decode(bytes);
}
