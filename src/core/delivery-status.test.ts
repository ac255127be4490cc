import { describe, expect, test } from "bun:test";
import {
  type CarryingEndpoint,
  decideMemberStatuses,
  decideStatus,
  type EndpointAttempt,
} from "./delivery-status.ts";

const ok: EndpointAttempt = { outcome: "SUCCESS" };
const retry = (retryAfterMs?: number): EndpointAttempt => ({
  outcome: "RETRYABLE",
  error: "HTTP 503",
  retryAfterMs,
});
const notSent: EndpointAttempt = { outcome: "RETRYABLE", error: "rate limit queue full", notSent: true };
const refused: EndpointAttempt = { outcome: "PERMANENT", error: "HTTP 404" };
const policy = { baseDelayMs: 1000, delayCapMs: 60_000, attemptsMax: 3 };
const half = () => 0.5;
const attempt = (results: EndpointAttempt[], attemptsMade = 1, earlier = { delivered: 0, permanent: 0 }) =>
  decideStatus(
    { results, deliveredEarlier: earlier.delivered, permanentEarlier: earlier.permanent, attemptsMade },
    half,
    policy,
  );

describe("decideStatus", () => {
  test("every endpoint delivered -> SENT", () => {
    expect(attempt([ok, ok])).toEqual({ status: "SENT" });
  });
  test("a retryable failure -> RETRY with jittered backoff", () => {
    expect(attempt([ok, retry()], 2)).toEqual({
      status: "RETRY",
      nextAttemptDelayMs: 1000,
      error: "HTTP 503",
    });
  });
  test("Retry-After is a floor for the next attempt", () => {
    expect(attempt([retry(30_000)]).nextAttemptDelayMs).toBe(30_000);
  });
  test("retryable failures run out of attempts -> FAILED", () => {
    const decision = attempt([retry()], 3);
    expect(decision.status).toBe("FAILED");
    expect(decision.error).toContain("gave up after 3 attempts");
  });
  test("an attempt that sent nothing never gives up, whatever the attempts count", () => {
    expect(attempt([notSent], 3)).toEqual({
      status: "RETRY",
      nextAttemptDelayMs: 2000,
      error: "rate limit queue full",
    });
    expect(attempt([notSent, ok], 9).status).toBe("RETRY");
    // One endpoint's send failed on the last attempt: the attempt counts.
    expect(attempt([notSent, retry()], 3).status).toBe("FAILED");
  });
  test("a permanent refusal -> FAILED with its reason, unless something can still be retried", () => {
    expect(attempt([ok, refused])).toEqual({ status: "FAILED", error: "HTTP 404" });
    expect(attempt([refused, retry()]).status).toBe("RETRY");
    expect(attempt([ok], 2, { delivered: 0, permanent: 1 }).status).toBe("FAILED");
  });
  test("no endpoint at all -> FAILED, so no row waits forever", () => {
    expect(attempt([])).toEqual({ status: "FAILED", error: "no enabled endpoint" });
  });
  test("nothing pending after earlier successes -> SENT", () => {
    expect(attempt([], 2, { delivered: 2, permanent: 0 })).toEqual({ status: "SENT" });
  });
});

describe("decideMemberStatuses: each row of a group send, by its own endpoints", () => {
  const sendRetry = { status: "RETRY", nextAttemptDelayMs: 1000, error: "HTTP 503" } as const;
  const sendGaveUp = { status: "FAILED", error: "gave up after 3 attempts: HTTP 503" } as const;
  const carrying = (ids: string[], outcome: EndpointAttempt | "SUCCESS" | "PERMANENT"): CarryingEndpoint =>
    typeof outcome === "string"
      ? { memberIds: new Set(ids), earlier: outcome }
      : { memberIds: new Set(ids), result: outcome };
  const decide = (
    endpoints: CarryingEndpoint[],
    send: Parameters<typeof decideMemberStatuses>[2],
    attemptsMade = 1,
  ) => Object.fromEntries(decideMemberStatuses(["a", "b", "c"], endpoints, send, attemptsMade, policy));

  test("its endpoints delivered -> SENT though another row's endpoint is retried; none of its own -> FAILED", () => {
    expect(
      decide([carrying(["a"], ok), carrying(["b"], "SUCCESS"), carrying(["b", "c"], retry())], sendRetry),
    ).toEqual({
      a: { status: "SENT" },
      b: { status: "RETRY", error: "HTTP 503" },
      c: { status: "RETRY", error: "HTTP 503" },
    });
    expect(decide([carrying(["a", "b"], ok)], { status: "SENT" })).toEqual({
      a: { status: "SENT" },
      b: { status: "SENT" },
      c: { status: "FAILED", error: "no enabled endpoint" },
    });
  });
  test("only its own endpoint's refusal fails it, now or in an earlier attempt", () => {
    expect(
      decide([carrying(["a"], refused), carrying(["b"], ok), carrying(["c"], "PERMANENT")], {
        status: "FAILED",
        error: "HTTP 404",
      }),
    ).toEqual({
      a: { status: "FAILED", error: "HTTP 404" },
      b: { status: "SENT" },
      c: { status: "FAILED", error: "an endpoint refused the notification permanently" },
    });
  });
  test("a row whose endpoints sent nothing gives up with its send, one that sent by its own count", () => {
    expect(decide([carrying(["a", "b", "c"], notSent), carrying(["a"], retry())], sendGaveUp, 3)).toEqual({
      a: { status: "FAILED", error: "gave up after 3 attempts: rate limit queue full" },
      b: sendGaveUp,
      c: sendGaveUp,
    });
  });
});
