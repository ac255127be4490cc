import type { ConsumedRecord, ProduceRecord } from "../kafka/index.ts";
import { deadLetterTopic } from "./topics.ts";

/**
 * A record that cannot be processed: decoding failed or a field is invalid. Goes to the DLQ. Thrown
 * by `process` too, for a record found impossible only then (e.g. one a channel cannot render).
 */
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

/**
 * Bounds on the headers' text: a field name can come from the record (a context key) and a reason can
 * quote a value, and a dead letter carrying the record plus an echo of it could exceed what the topic
 * accepts, and fail the stage instead.
 */
const fieldCharsMax = 200;
const reasonCharsMax = 1000;

/** The dead-letter record for `record`, keeping its key, value and headers, adding why it failed. */
export function toDeadLetter(
  record: ConsumedRecord,
  refusal: { field: string; reason: string },
  stage: string,
  nowMs: number,
): ProduceRecord {
  const headers: Record<string, string | Uint8Array> = Object.fromEntries(record.headers);
  const field = truncate(refusal.field, fieldCharsMax);
  headers[deadLetterHeaders.reason] = truncate(`${field}: ${refusal.reason}`, reasonCharsMax);
  headers[deadLetterHeaders.field] = field;
  headers[deadLetterHeaders.stage] = stage;
  headers[deadLetterHeaders.topic] = record.topic;
  headers[deadLetterHeaders.partition] = String(record.partition);
  headers[deadLetterHeaders.offset] = String(record.offset);
  headers[deadLetterHeaders.failedAtMs] = String(nowMs);
  return { topic: deadLetterTopic(record.topic), key: record.key, value: record.value, headers };
}

function truncate(text: string, charsMax: number): string {
  return text.length <= charsMax ? text : `${text.slice(0, charsMax)}…`;
}
