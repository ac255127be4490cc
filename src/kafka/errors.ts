import { errorName, errorText } from "./native.ts";

/**
 * Every librdkafka error code this project names or reacts to, each with whether retrying the same
 * operation can succeed. Codes not listed are treated as not retryable: an unknown failure must
 * surface, not loop. Negative codes are librdkafka's own (client side); positive ones come from the
 * broker. Some are not failures at all (noError, the rebalance signals, partitionEof): they are
 * here so that every code the client compares against has one name.
 */
export const kafkaErrors = {
  noError: { code: 0, retryable: false },
  fatal: { code: -150, retryable: false }, // _FATAL: the idempotent producer cannot go on
  outdated: { code: -168, retryable: false }, // _OUTDATED: operation on a stale generation
  state: { code: -172, retryable: false }, // _STATE: e.g. the client is closed
  revokePartitions: { code: -174, retryable: false }, // _REVOKE_PARTITIONS: a rebalance signal
  assignPartitions: { code: -175, retryable: false }, // _ASSIGN_PARTITIONS: a rebalance signal
  inProgress: { code: -178, retryable: true }, // _IN_PROGRESS
  unknownGroup: { code: -180, retryable: true }, // _UNKNOWN_GROUP
  waitCoordinator: { code: -181, retryable: true }, // _WAIT_COORD
  queueFull: { code: -184, retryable: true }, // _QUEUE_FULL: local producer queue full, poll and retry
  timedOut: { code: -185, retryable: true }, // _TIMED_OUT
  invalidArgument: { code: -186, retryable: false }, // _INVALID_ARG
  allBrokersDown: { code: -187, retryable: true }, // _ALL_BROKERS_DOWN
  unknownTopic: { code: -188, retryable: false }, // _UNKNOWN_TOPIC: topic missing from the cluster
  unknownPartition: { code: -190, retryable: false }, // _UNKNOWN_PARTITION
  partitionEof: { code: -191, retryable: false }, // _PARTITION_EOF: not an error, the end of a partition
  messageTimedOut: { code: -192, retryable: true }, // _MSG_TIMED_OUT: not delivered within message.timeout.ms
  transport: { code: -195, retryable: true }, // _TRANSPORT: broker connection failed
  unknownTopicOrPartition: { code: 3, retryable: true }, // may be transient while a topic is being created
  leaderNotAvailable: { code: 5, retryable: true },
  notLeaderForPartition: { code: 6, retryable: true },
  requestTimedOut: { code: 7, retryable: true },
  messageSizeTooLarge: { code: 10, retryable: false },
  coordinatorLoadInProgress: { code: 14, retryable: true },
  coordinatorNotAvailable: { code: 15, retryable: true },
  notCoordinator: { code: 16, retryable: true },
  illegalGeneration: { code: 22, retryable: false }, // our group generation is gone; offsets cannot be committed
  unknownMemberId: { code: 25, retryable: false },
  rebalanceInProgress: { code: 27, retryable: true },
  topicAlreadyExists: { code: 36, retryable: false },
} as const satisfies Record<string, { code: number; retryable: boolean }>;

type KafkaErrorName = keyof typeof kafkaErrors;

/** The codes by name, for comparisons: `code === ErrorCode.queueFull`. */
export const ErrorCode = Object.fromEntries(
  Object.entries(kafkaErrors).map(([name, { code }]) => [name, code]),
) as { readonly [Name in KafkaErrorName]: (typeof kafkaErrors)[Name]["code"] };

const retryableByCode: ReadonlyMap<number, boolean> = new Map(
  Object.values(kafkaErrors).map(({ code, retryable }) => [code, retryable]),
);

export function isRetryable(code: number): boolean {
  return retryableByCode.get(code) ?? false;
}

/** An operating error from librdkafka: what failed, librdkafka's error name, and whether to retry. */
export class KafkaError extends Error {
  readonly code: number;
  /** librdkafka's symbolic name, e.g. `_MSG_TIMED_OUT` or `UNKNOWN_TOPIC_OR_PART`. */
  readonly errorName: string;
  /** From `kafkaErrors`, never decided at the call site. */
  readonly retryable: boolean;

  constructor(operation: string, code: number, detail?: string) {
    const name = errorName(code);
    super(`${operation}: ${name}: ${detail || errorText(code)}`);
    this.name = "KafkaError";
    this.code = code;
    this.errorName = name;
    this.retryable = isRetryable(code);
  }
}

/** Throws a KafkaError unless `code` is zero. */
export function check(operation: string, code: number): void {
  if (code !== 0) throw new KafkaError(operation, code);
}
