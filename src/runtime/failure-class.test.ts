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

const cases: [string, unknown, FailureClass][] = [
  ["an invalid record", new InvalidRecordError("context.db_password", "contains a NUL"), "permanent"],
  ["postgres 22021 NUL in text", postgresError("22021"), "permanent"],
  ["postgres 22P05 NUL in jsonb", postgresError("22P05"), "permanent"],
  ["postgres 22008 timestamp out of range", postgresError("22008"), "permanent"],
  ["postgres 22P02 invalid text representation", postgresError("22P02"), "permanent"],
  ["postgres 23502 not null violation", postgresError("23502"), "permanent"],
  ["postgres 23503 foreign key violation", postgresError("23503"), "permanent"],
  ["postgres 23514 check violation", postgresError("23514"), "permanent"],
  ["postgres 21000 cardinality violation", postgresError("21000"), "permanent"],
  ["postgres 54000 index row too large", postgresError("54000"), "permanent"],
  ["postgres 08006 connection failure", postgresError("08006"), "transient"],
  ["postgres 40001 serialization failure", postgresError("40001"), "transient"],
  ["postgres 40P01 deadlock", postgresError("40P01"), "transient"],
  ["postgres 53100 disk full", postgresError("53100"), "transient"],
  ["postgres 53300 too many connections", postgresError("53300"), "transient"],
  ["postgres 55P03 lock not available", postgresError("55P03"), "transient"],
  ["postgres 57014 query canceled", postgresError("57014"), "transient"],
  ["postgres 57P01 admin shutdown", postgresError("57P01"), "transient"],
  ["postgres 57P02 crash shutdown", postgresError("57P02"), "transient"],
  ["postgres 57P03 cannot connect now", postgresError("57P03"), "transient"],
  ["postgres 58030 I/O error", postgresError("58030"), "transient"],
  ["postgres 42P01 undefined table", postgresError("42P01"), "fatal"],
  ["postgres 42703 undefined column", postgresError("42703"), "fatal"],
  ["postgres 42501 insufficient privilege", postgresError("42501"), "fatal"],
  ["postgres 25P02 in failed transaction", postgresError("25P02"), "fatal"],
  ["postgres 28P01 bad password", postgresError("28P01"), "fatal"],
  ["postgres XX000 internal error", postgresError("XX000"), "fatal"],
  ["postgres P0001 raised by a function (class not listed)", postgresError("P0001"), "fatal"],
  ["postgres.js CONNECTION_CLOSED", codedError("CONNECTION_CLOSED"), "transient"],
  ["postgres.js CONNECTION_DESTROYED", codedError("CONNECTION_DESTROYED"), "transient"],
  ["postgres.js CONNECT_TIMEOUT", codedError("CONNECT_TIMEOUT"), "transient"],
  ["postgres.js CONNECTION_ENDED (pool closed)", codedError("CONNECTION_ENDED"), "fatal"],
  ["postgres.js UNDEFINED_VALUE", codedError("UNDEFINED_VALUE"), "fatal"],
  ["socket ECONNREFUSED", codedError("ECONNREFUSED"), "transient"],
  ["socket ECONNRESET", codedError("ECONNRESET"), "transient"],
  ["socket ETIMEDOUT", codedError("ETIMEDOUT"), "transient"],
  ["a code that names an Object.prototype member", codedError("constructor"), "transient"],
  ["kafka _MSG_TIMED_OUT", new KafkaError("delivery", kafkaErrors.messageTimedOut.code), "transient"],
  ["kafka _TRANSPORT", new KafkaError("produce", kafkaErrors.transport.code), "transient"],
  ["kafka _STATE (closed client)", new KafkaError("send", kafkaErrors.state.code, "closed"), "fatal"],
  ["kafka MSG_SIZE_TOO_LARGE", new KafkaError("delivery", kafkaErrors.messageSizeTooLarge.code), "fatal"],
  ["kafka code not in the table", new KafkaError("delivery", 87), "fatal"],
  ["a deadline", new DeadlineError("a batch's processing", 1000), "fatal"],
  ["a failed assertion", caught(() => assert(false, "invariant")), "fatal"],
  ["a TypeError", caught(() => (null as unknown as { x: () => void }).x()), "fatal"],
  ["a RangeError", caught(() => new Array(-1)), "fatal"],
  ["an unknown Error", new Error("redis: connection is closed"), "transient"],
  ["a thrown string", "boom", "transient"],
  ["undefined", undefined, "transient"],
];

describe("failureClass", () => {
  test.each(cases)("%s -> %s", (_description, error, expected) => {
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
