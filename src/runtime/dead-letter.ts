import type { ConsumedRecord, ProduceRecord } from "../kafka/index.ts";
import { deadLetterTopic } from "./topics.ts";

/** A record that cannot be processed: decoding failed or a field is invalid. Goes to the DLQ. */
export class InvalidRecordError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "InvalidRecordError";
  }
}

/** Header names on dead-letter records; the value is the original bytes, untouched. */
export const deadLetterHeaders = {
  reason: "dlq.reason",
  field: "dlq.field",
  stage: "dlq.stage",
  topic: "dlq.source.topic",
  partition: "dlq.source.partition",
  offset: "dlq.source.offset",
  failedAtMs: "dlq.failed_at_ms",
} as const;

/** The dead-letter record for `record`, keeping its key, value and headers, adding why it failed. */
export function toDeadLetter(
  record: ConsumedRecord,
  error: InvalidRecordError,
  stage: string,
  nowMs: number,
): ProduceRecord {
  const headers: Record<string, string | Uint8Array> = Object.fromEntries(record.headers);
  headers[deadLetterHeaders.reason] = error.message;
  headers[deadLetterHeaders.field] = error.field;
  headers[deadLetterHeaders.stage] = stage;
  headers[deadLetterHeaders.topic] = record.topic;
  headers[deadLetterHeaders.partition] = String(record.partition);
  headers[deadLetterHeaders.offset] = String(record.offset);
  headers[deadLetterHeaders.failedAtMs] = String(nowMs);
  return { topic: deadLetterTopic(record.topic), key: record.key, value: record.value, headers };
}
