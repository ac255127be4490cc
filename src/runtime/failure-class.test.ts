import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { assert } from "../core/assert.ts";
import { kafkaErrors } from "../kafka/errors.ts";
import { KafkaError } from "../kafka/index.ts";
import { InvalidRecordError } from "./dead-letter.ts";
import { DeadlineError } from "./deadline.ts";
import { type FailureClass, failureClass, refusalOf } from "./failure-class.ts";

/** postgres.js's constructor takes the ErrorResponse's fields; its typings declare Error's. */
const PostgresError = postgres.PostgresError as unknown as new (fields: Record<string, string>) => Error;

/** An error as postgres.js makes it from a server ErrorResponse (its own class, fields as sent). */
function postgresError(code: string, fields: Record<string, string> = {}): Error {
  return new PostgresError({ code, message: `server says ${code}`, severity: "ERROR", ...fields });
}

/** An error as postgres.js makes it for a client-side condition, or as a socket raises it. */
function codedError(code: string): Error {
  return Object.assign(new Error(`${code}: something`), { code });
}

function caught(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

const cases: [string, FailureClass, unknown][] = [
  ["an invalid record", "permanent", new InvalidRecordError("context.db_password", "contains a NUL")],
  ["postgres 22021 NUL in text", "permanent", postgresError("22021")],
  ["postgres 22P05 NUL in jsonb", "permanent", postgresError("22P05")],
  ["postgres 22008 timestamp out of range", "permanent", postgresError("22008")],
  ["postgres 22P02 invalid text representation", "permanent", postgresError("22P02")],
  ["postgres 23502 not null violation", "permanent", postgresError("23502")],
  ["postgres 23503 foreign key violation", "permanent", postgresError("23503")],
  ["postgres 23514 check violation", "permanent", postgresError("23514")],
  ["postgres 21000 cardinality violation", "permanent", postgresError("21000")],
  ["postgres 54000 index row too large", "permanent", postgresError("54000")],
  ["postgres 08006 connection failure", "transient", postgresError("08006")],
  ["postgres 40001 serialization failure", "transient", postgresError("40001")],
  ["postgres 40P01 deadlock", "transient", postgresError("40P01")],
  ["postgres 53100 disk full", "transient", postgresError("53100")],
  ["postgres 53300 too many connections", "transient", postgresError("53300")],
  ["postgres 55P03 lock not available", "transient", postgresError("55P03")],
  ["postgres 57014 query canceled", "transient", postgresError("57014")],
  ["postgres 57P01 admin shutdown", "transient", postgresError("57P01")],
  ["postgres 57P02 crash shutdown", "transient", postgresError("57P02")],
  ["postgres 57P03 cannot connect now", "transient", postgresError("57P03")],
  ["postgres 58030 I/O error", "transient", postgresError("58030")],
  ["postgres 42P01 undefined table", "fatal", postgresError("42P01")],
  ["postgres 42703 undefined column", "fatal", postgresError("42703")],
  ["postgres 42501 insufficient privilege", "fatal", postgresError("42501")],
  ["postgres 25P02 in failed transaction", "fatal", postgresError("25P02")],
  ["postgres 28P01 bad password", "fatal", postgresError("28P01")],
  ["postgres XX000 internal error", "fatal", postgresError("XX000")],
  ["postgres P0001 raised by a function (class not listed)", "fatal", postgresError("P0001")],
  ["postgres.js CONNECTION_CLOSED", "transient", codedError("CONNECTION_CLOSED")],
  ["postgres.js CONNECTION_DESTROYED", "transient", codedError("CONNECTION_DESTROYED")],
  ["postgres.js CONNECT_TIMEOUT", "transient", codedError("CONNECT_TIMEOUT")],
  ["postgres.js CONNECTION_ENDED (pool closed)", "fatal", codedError("CONNECTION_ENDED")],
  ["postgres.js UNDEFINED_VALUE", "fatal", codedError("UNDEFINED_VALUE")],
  ["socket ECONNREFUSED", "transient", codedError("ECONNREFUSED")],
  ["socket ECONNRESET", "transient", codedError("ECONNRESET")],
  ["socket ETIMEDOUT", "transient", codedError("ETIMEDOUT")],
  ["a code that names an Object.prototype member", "transient", codedError("constructor")],
  ["kafka _MSG_TIMED_OUT", "transient", new KafkaError("delivery", kafkaErrors.messageTimedOut.code)],
  ["kafka _TRANSPORT", "transient", new KafkaError("produce", kafkaErrors.transport.code)],
  ["kafka _STATE (closed client)", "fatal", new KafkaError("send", kafkaErrors.state.code, "closed")],
  ["kafka MSG_SIZE_TOO_LARGE", "fatal", new KafkaError("delivery", kafkaErrors.messageSizeTooLarge.code)],
  ["kafka code not in the table", "fatal", new KafkaError("delivery", 87)],
  ["a deadline", "fatal", new DeadlineError("a batch's processing", 1000)],
  ["a failed assertion", "fatal", caught(() => assert(false, "invariant"))],
  ["a TypeError", "fatal", caught(() => (null as unknown as { x: () => void }).x())],
  ["a RangeError", "fatal", caught(() => new Array(-1))],
  ["an unknown Error", "transient", new Error("redis: connection is closed")],
  ["a thrown string", "transient", "boom"],
  ["undefined", "transient", undefined],
];

describe("failureClass", () => {
  test.each(cases)("%s -> %s", (_description, expected, error) => {
    expect(failureClass(error)).toBe(expected);
  });

  test("every Kafka code's class follows its retryable flag, one flag per code", () => {
    const codes = Object.values(kafkaErrors).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, { code, retryable }] of Object.entries(kafkaErrors)) {
      const error = new KafkaError(name, code);
      expect({ name, retryable: error.retryable }).toEqual({ name, retryable });
      if (code !== 0) expect(failureClass(error)).toBe(retryable ? "transient" : "fatal");
    }
  });
});

describe("refusalOf", () => {
  test("an invalid record keeps its field and reason", () => {
    expect(refusalOf(new InvalidRecordError("context.db_password", "contains a NUL character"))).toEqual({
      field: "context.db_password",
      reason: "contains a NUL character",
      kind: "invalid",
    });
  });

  test("a Postgres refusal gives its SQLSTATE and message, the column and detail when sent", () => {
    expect(refusalOf(postgresError("22008", { message: "timestamp out of range" }))).toEqual({
      field: "value",
      reason: "postgres 22008: timestamp out of range",
      kind: "postgres_22",
    });
    const notNull = postgresError("23502", {
      message: 'null value in column "alert_id" violates not-null constraint',
      column_name: "alert_id",
      detail: "Failing row contains (...)",
    });
    expect(refusalOf(notNull)).toEqual({
      field: "alert_id",
      reason:
        'postgres 23502: null value in column "alert_id" violates not-null constraint (Failing row contains (...))',
      kind: "postgres_23",
    });
  });
});
