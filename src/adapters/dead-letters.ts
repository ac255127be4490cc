/**
 * Dead-letter topics, for operators: list what is in one (reason, source, original bytes), and
 * replay records to their source topic after a fix. Replay progress is the committed offset of a
 * dedicated consumer group, so a record is replayed once even if the tool runs again.
 */

import type { Admin } from "../kafka/index.ts";
import { type ConsumedRecord, Consumer, type Headers, type Producer } from "../kafka/index.ts";
import { deadLetterHeaders } from "../runtime/dead-letter.ts";
import type { Logger } from "../runtime/log.ts";

export interface DeadLetter {
  partition: number;
  offset: number;
  reason: string;
  field: string;
  stage: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  failedAtMs: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  /** The record's own headers, without the dlq.* ones. */
  headers: Headers;
}

const utf8 = new TextDecoder();
const replayGroup = (topic: string) => `dead-letter-replay.${topic}`;
const deadLetterHeaderNames = new Set<string>(Object.values(deadLetterHeaders));

export function toDeadLetter(record: ConsumedRecord): DeadLetter {
  const header = (name: string) => {
    const value = record.headers.get(name);
    return value === undefined ? "" : utf8.decode(value);
  };
  const headers: Headers = {};
  for (const [name, value] of record.headers) if (!deadLetterHeaderNames.has(name)) headers[name] = value;
  return {
    partition: record.partition,
    offset: record.offset,
    reason: header(deadLetterHeaders.reason),
    field: header(deadLetterHeaders.field),
    stage: header(deadLetterHeaders.stage),
    sourceTopic: header(deadLetterHeaders.topic),
    sourcePartition: Number(header(deadLetterHeaders.partition)),
    sourceOffset: Number(header(deadLetterHeaders.offset)),
    failedAtMs: Number(header(deadLetterHeaders.failedAtMs)),
    key: record.key,
    value: record.value,
    headers,
  };
}

/**
 * Reads `topic` from `groupId`'s committed position (or the beginning) up to the end offsets as
 * they were when the call started, at most `limit` records. Commits nothing.
 */
async function readUpToEnd(
  brokers: string,
  admin: Admin,
  topic: string,
  groupId: string,
  limit: number,
  logger: Logger,
  onBatch?: (records: readonly ConsumedRecord[], consumer: Consumer) => Promise<void>,
): Promise<ConsumedRecord[]> {
  const info = admin.listTopics().find((t) => t.name === topic);
  if (!info) throw new Error(`no topic ${topic}`);
  const endOffsets = new Map(info.partitions.map((p) => [p, admin.watermarks(topic, p).high]));
  const consumer = new Consumer({ brokers, groupId, topics: [topic], logger });
  const seen: ConsumedRecord[] = [];
  try {
    const committed = new Map<number, number>();
    const done = () =>
      seen.length >= limit ||
      [...endOffsets].every(([partition, end]) => (committed.get(partition) ?? -1) >= end - 1 || end === 0);
    const deadline = performance.now() + 30_000;
    // Partitions whose committed position is already at the end produce no records: learn it first.
    for (const { partition, offset } of consumer.committed(
      info.partitions.map((partition) => ({ topic, partition })),
    )) {
      if (offset >= 0) committed.set(partition, offset - 1);
    }
    while (!done() && performance.now() < deadline) {
      const records = (await consumer.consume(Math.min(1000, limit - seen.length), 200)).filter(
        (r) => r.offset < (endOffsets.get(r.partition) ?? 0),
      );
      if (records.length === 0) continue;
      await onBatch?.(records, consumer);
      for (const r of records)
        committed.set(r.partition, Math.max(committed.get(r.partition) ?? -1, r.offset));
      seen.push(...records);
    }
    return seen;
  } finally {
    await consumer.close();
  }
}

export async function listDeadLetters(
  brokers: string,
  admin: Admin,
  topic: string,
  limit: number,
  logger: Logger,
): Promise<DeadLetter[]> {
  // A throwaway group: listing never moves the replay position.
  const group = `dead-letter-list.${topic}.${crypto.randomUUID()}`;
  return (await readUpToEnd(brokers, admin, topic, group, limit, logger)).map(toDeadLetter);
}

/**
 * Sends each dead letter not replayed yet back to its source topic (or `targetTopic`) with its
 * original key, value and headers, and commits the replay group's offsets after the produce is
 * acknowledged. Returns how many were replayed.
 */
export async function replayDeadLetters(
  brokers: string,
  admin: Admin,
  producer: Producer,
  topic: string,
  options: { limit: number; targetTopic?: string },
  logger: Logger,
): Promise<number> {
  let replayed = 0;
  await readUpToEnd(
    brokers,
    admin,
    topic,
    replayGroup(topic),
    options.limit,
    logger,
    async (records, consumer) => {
      const letters = records.map(toDeadLetter);
      await producer.send(
        letters.map((letter) => ({
          topic: options.targetTopic ?? letter.sourceTopic,
          key: letter.key,
          value: letter.value,
          headers: letter.headers,
        })),
      );
      const last = new Map<number, ConsumedRecord>();
      for (const record of records) last.set(record.partition, record);
      await consumer.commit(
        [...last.values()].map((r) => ({
          topic,
          partition: r.partition,
          offset: r.offset + 1,
          assignmentEpoch: r.assignmentEpoch,
        })),
      );
      replayed += records.length;
    },
  );
  return replayed;
}
