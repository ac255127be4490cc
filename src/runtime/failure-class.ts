/**
 * What the consume loop does about an error thrown while processing or producing a batch. One closed
 * table, consulted by the loop for every failure:
 *
 *   transient  the same work can succeed later (a lost connection, a serialization failure, a
 *              timeout): retry the batch with backoff, a bounded number of times;
 *   permanent  the records themselves can never succeed (Postgres refused a value for good, the
 *              processor declared a record invalid): isolate the poison records and dead-letter
 *              them, one at a time, while the rest of the batch proceeds;
 *   fatal      a programmer or deployment error (a failed assertion, a TypeError, a missing table,
 *              a closed client): no retry and no dead letter can fix it; the loop fails at once and
 *              the stage restarts from its last commit.
 *
 * Errors the table does not know are transient: retried a bounded number of times, then the loop
 * fails, as every error did before this table existed. Dead-lettering an unknown error could drop
 * good records, and failing at once on one would turn every hiccup of a dependency into a restart.
 */
import { AssertionError } from "../core/assert.ts";
import { KafkaError } from "../kafka/index.ts";
import { InvalidRecordError } from "./dead-letter.ts";
import { DeadlineError } from "./deadline.ts";

export type FailureClass = "transient" | "permanent" | "fatal";

/**
 * Postgres errors by SQLSTATE class (the code's first two characters). A class not listed is fatal:
 * an unexpected server error must surface, not loop and not drop records.
 */
export const postgresFailureClasses = {
  "08": "transient", // connection exception
  "21": "permanent", // cardinality violation: the batch's rows collide with each other
  "22": "permanent", // data exception: a value the column cannot hold (NUL, out of range, bad JSON)
  "23": "permanent", // integrity constraint violation: not null, foreign key, check, unique
  "40": "transient", // transaction rollback: serialization failure, deadlock
  "42": "fatal", // syntax error or access rule violation: the statement or schema is wrong, not the data
  "53": "transient", // insufficient resources: disk full, out of memory, too many connections
  "54": "permanent", // program limit exceeded: e.g. a value too large for an index row
  "55": "transient", // object not in prerequisite state: lock not available
  "57": "transient", // operator intervention: query canceled, admin or crash shutdown, cannot connect now
  "58": "transient", // system error: I/O
} as const satisfies Record<string, FailureClass>;

/**
 * Errors by their `code` property where it is not a SQLSTATE: postgres.js's client-side codes and
 * the socket errors of Bun/Node.
 */
export const clientFailureCodes = {
  CONNECTION_CLOSED: "transient",
  CONNECTION_DESTROYED: "transient",
  CONNECT_TIMEOUT: "transient",
  CONNECTION_ENDED: "fatal", // the pool was ended on purpose: nothing runs on it again
  UNDEFINED_VALUE: "fatal", // a query parameter was undefined: a programmer error
  NOT_TAGGED_CALL: "fatal",
  UNSAFE_TRANSACTION: "fatal",
  MAX_PARAMETERS_EXCEEDED: "fatal",
  ECONNREFUSED: "transient",
  ECONNRESET: "transient",
  ETIMEDOUT: "transient",
  EPIPE: "transient",
  ENOTFOUND: "transient",
  EAI_AGAIN: "transient",
  EHOSTUNREACH: "transient",
  ENETUNREACH: "transient",
} as const satisfies Record<string, FailureClass>;

/** Errors that only a code change fixes. */
const programmerErrors = [AssertionError, TypeError, RangeError, ReferenceError, SyntaxError] as const;

/** How the loop treats `error`; see the module comment. */
export function failureClass(error: unknown): FailureClass {
  if (error instanceof InvalidRecordError) return "permanent";
  if (error instanceof DeadlineError) return "fatal"; // its connections may be broken: restart
  if (error instanceof KafkaError) return error.retryable ? "transient" : "fatal";
  const sqlState = sqlStateOf(error);
  if (sqlState !== undefined) return lookUp(postgresFailureClasses, sqlState.slice(0, 2)) ?? "fatal";
  const code = (error as { code?: unknown } | null)?.code;
  const byCode = typeof code === "string" ? lookUp(clientFailureCodes, code) : undefined;
  if (byCode !== undefined) return byCode;
  if (programmerErrors.some((type) => error instanceof type)) return "fatal";
  return "transient";
}

function lookUp(table: Readonly<Record<string, FailureClass>>, key: string): FailureClass | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** Why a record was refused for good: what its dead letter says and which metric label counts it. */
export interface Refusal {
  field: string;
  reason: string;
  /** A small closed set, fit for a metric label: `invalid` or `postgres_<SQLSTATE class>`. */
  kind: string;
}

/**
 * The refusal a permanent `error` stands for. Postgres names the column for some errors (not-null,
 * some check violations); otherwise the field is the whole record's `value`.
 */
export function refusalOf(error: unknown): Refusal {
  if (error instanceof InvalidRecordError)
    return { field: error.field, reason: error.reason, kind: "invalid" };
  const sqlState = sqlStateOf(error);
  if (sqlState !== undefined) {
    const { message, detail, column_name: column } = error as PostgresErrorFields;
    return {
      field: column || "value",
      reason: `postgres ${sqlState}: ${message}${detail ? ` (${detail})` : ""}`,
      kind: `postgres_${sqlState.slice(0, 2)}`,
    };
  }
  return { field: "value", reason: String(error), kind: "other" };
}

/** The fields of a postgres.js PostgresError that are used here. */
interface PostgresErrorFields {
  name: string;
  code: string;
  message: string;
  detail?: string;
  column_name?: string;
}

const sqlStatePattern = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of an error Postgres sent (postgres.js's PostgresError), else undefined. */
function sqlStateOf(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== "PostgresError") return undefined;
  const code = (error as Partial<PostgresErrorFields>).code;
  return typeof code === "string" && sqlStatePattern.test(code) ? code : undefined;
}
