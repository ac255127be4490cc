import { errorName, errorText } from "./native.ts";

/**
 * librdkafka error codes this project reacts to, each with whether retrying the same operation can
 * succeed. Codes not listed are treated as not retryable: an unknown failure must surface, not loop.
 * Negative codes are librdkafka's own (client side); positive ones come from the broker.
 */
const retryableByCode: ReadonlyMap<number, boolean> = new Map([
  [-195, true], // _TRANSPORT: broker connection failed
  [-192, true], // _MSG_TIMED_OUT: not delivered within message.timeout.ms
  [-187, true], // _ALL_BROKERS_DOWN
  [-185, true], // _TIMED_OUT
  [-184, true], // _QUEUE_FULL: local producer queue full, poll and retry
  [-181, true], // _WAIT_COORD
  [-180, true], // _UNKNOWN_GROUP
  [-178, true], // _IN_PROGRESS
  [-172, false], // _STATE
  [-188, false], // _UNKNOWN_TOPIC: topic missing from the cluster
  [-190, false], // _UNKNOWN_PARTITION
  [-186, false], // _INVALID_ARG
  [-168, false], // _OUTDATED: operation on a stale generation
  [-150, false], // _FATAL
  [3, true], // UNKNOWN_TOPIC_OR_PART: may be transient while a topic is being created
  [5, true], // LEADER_NOT_AVAILABLE
  [6, true], // NOT_LEADER_FOR_PARTITION
  [7, true], // REQUEST_TIMED_OUT
  [10, false], // MSG_SIZE_TOO_LARGE
  [14, true], // COORDINATOR_LOAD_IN_PROGRESS
  [15, true], // COORDINATOR_NOT_AVAILABLE
  [16, true], // NOT_COORDINATOR
  [22, false], // ILLEGAL_GENERATION: our group generation is gone; offsets cannot be committed
  [25, false], // UNKNOWN_MEMBER_ID
  [27, true], // REBALANCE_IN_PROGRESS
  [36, false], // TOPIC_ALREADY_EXISTS
]);

export function isRetryable(code: number): boolean {
  return retryableByCode.get(code) ?? false;
}

/** An operating error from librdkafka: what failed, librdkafka's error name, and whether to retry. */
export class KafkaError extends Error {
  readonly code: number;
  /** librdkafka's symbolic name, e.g. `_MSG_TIMED_OUT` or `UNKNOWN_TOPIC_OR_PART`. */
  readonly errorName: string;
  readonly retryable: boolean;

  constructor(operation: string, code: number, detail?: string, retryable: boolean = isRetryable(code)) {
    const name = errorName(code);
    super(`${operation}: ${name}: ${detail || errorText(code)}`);
    this.name = "KafkaError";
    this.code = code;
    this.errorName = name;
    this.retryable = retryable;
  }
}

/** Throws a KafkaError unless `code` is zero. */
export function check(operation: string, code: number): void {
  if (code !== 0) throw new KafkaError(operation, code);
}
