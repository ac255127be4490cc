import { describe, expect, test } from "bun:test";
import {
  classifyHttpStatus,
  classifyNetworkError,
  classifySmtpReply,
  type DeliveryOutcome,
  nextAttemptDelayMs,
  parseRetryAfterMs,
  retryAfterCapMs,
} from "./retry.ts";

/** The expected decision for every status, written as explicit ranges so the policy reads at a glance. */
const expectedRanges: Array<[first: number, last: number, outcome: DeliveryOutcome]> = [
  [100, 199, "PERMANENT"],
  [200, 299, "SUCCESS"],
  [300, 399, "PERMANENT"],
  [400, 407, "PERMANENT"],
  [408, 408, "RETRYABLE"],
  [409, 424, "PERMANENT"],
  [425, 425, "RETRYABLE"],
  [426, 428, "PERMANENT"],
  [429, 429, "RETRYABLE"],
  [430, 499, "PERMANENT"],
  [500, 500, "RETRYABLE"],
  [501, 501, "PERMANENT"],
  [502, 504, "RETRYABLE"],
  [505, 505, "PERMANENT"],
  [506, 599, "RETRYABLE"],
];

describe("classifyHttpStatus", () => {
  test("maps every status 100-599 as the ranges say", () => {
    const actual: Array<[number, DeliveryOutcome]> = [];
    const expected: Array<[number, DeliveryOutcome]> = [];
    for (let status = 100; status <= 599; status++) {
      actual.push([status, classifyHttpStatus(status, new Headers()).outcome]);
    }
    for (const [first, last, outcome] of expectedRanges) {
      for (let status = first; status <= last; status++) expected.push([status, outcome]);
    }
    expect(expected).toHaveLength(500);
    expect(actual).toEqual(expected);
  });

  test("rejects numbers that are not statuses", () => {
    expect(() => classifyHttpStatus(99, new Headers())).toThrow(RangeError);
    expect(() => classifyHttpStatus(600, new Headers())).toThrow(RangeError);
  });

  test("Retry-After is carried on retryable statuses only", () => {
    const headers = new Headers({ "retry-after": "7" });
    expect(classifyHttpStatus(429, headers).retryAfterMs).toBe(7000);
    expect(classifyHttpStatus(503, headers).retryAfterMs).toBe(7000);
    expect(classifyHttpStatus(400, headers).retryAfterMs).toBeUndefined();
    expect(classifyHttpStatus(429, new Headers()).retryAfterMs).toBeUndefined();
  });
});

describe("parseRetryAfterMs", () => {
  const nowMs = Date.parse("2025-01-01T00:00:00Z");

  test("delay-seconds", () => {
    expect(parseRetryAfterMs("0", nowMs)).toBe(0);
    expect(parseRetryAfterMs("120", nowMs)).toBe(120_000);
    expect(parseRetryAfterMs(" 3 ", nowMs)).toBe(3000);
  });

  test("HTTP-date, relative to now; past dates mean now", () => {
    expect(parseRetryAfterMs("Wed, 01 Jan 2025 00:00:30 GMT", nowMs)).toBe(30_000);
    expect(parseRetryAfterMs("Tue, 31 Dec 2024 23:00:00 GMT", nowMs)).toBe(0);
  });

  test("capped", () => {
    expect(parseRetryAfterMs("999999999", nowMs)).toBe(retryAfterCapMs);
    expect(parseRetryAfterMs("Fri, 01 Jan 2100 00:00:00 GMT", nowMs)).toBe(retryAfterCapMs);
  });

  test("absent or malformed -> undefined", () => {
    for (const value of [
      null,
      "",
      "-5",
      "1.5",
      "soon",
      "2025-01-01T00:00:00Z",
      "Xyz, 99 Foo 2025 00:00:00 GMT",
    ]) {
      expect(parseRetryAfterMs(value, nowMs)).toBeUndefined();
    }
  });
});

describe("classifyNetworkError", () => {
  const withCode = (code: string) => Object.assign(new TypeError(code), { code });

  test("timeouts, refused/reset connections and DNS failures are retryable", () => {
    expect(classifyNetworkError(new DOMException("The operation timed out.", "TimeoutError"))).toEqual({
      outcome: "RETRYABLE",
      reason: "timed out",
    });
    for (const code of ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT"]) {
      const decision = classifyNetworkError(withCode(code));
      expect(decision.outcome).toBe("RETRYABLE");
      expect(decision.reason).toContain(code);
    }
  });

  test("unknown errors are retryable (the attempt bound ends them)", () => {
    expect(classifyNetworkError(new Error("boom")).outcome).toBe("RETRYABLE");
    expect(classifyNetworkError("not even an Error").reason).toContain("not even an Error");
  });
});

describe("classifySmtpReply", () => {
  test("2yz success, 4yz retryable, 5yz permanent", () => {
    expect(classifySmtpReply(250, "250 OK").outcome).toBe("SUCCESS");
    expect(classifySmtpReply(421, "421 busy").outcome).toBe("RETRYABLE");
    expect(classifySmtpReply(451, "451 try later").outcome).toBe("RETRYABLE");
    expect(classifySmtpReply(550, "550 no such user").outcome).toBe("PERMANENT");
    expect(classifySmtpReply(554, "554 rejected").reason).toBe("SMTP 554 rejected");
  });
});

describe("nextAttemptDelayMs", () => {
  const policy = { baseDelayMs: 1000, delayCapMs: 60_000, attemptsMax: 5 };

  test("full jitter under an exponential ceiling", () => {
    expect(nextAttemptDelayMs(1, undefined, () => 0.999999, policy)).toBe(999);
    expect(nextAttemptDelayMs(3, undefined, () => 0.5, policy)).toBe(2000);
    expect(nextAttemptDelayMs(3, undefined, () => 0, policy)).toBe(0);
  });

  test("capped, even for absurd attempt counts", () => {
    expect(nextAttemptDelayMs(10, undefined, () => 0.5, policy)).toBe(30_000);
    expect(nextAttemptDelayMs(10_000, undefined, () => 0.999999, policy)).toBeLessThan(60_000);
  });

  test("Retry-After is a floor", () => {
    expect(nextAttemptDelayMs(1, 5000, () => 0.5, policy)).toBe(5000);
    expect(nextAttemptDelayMs(6, 5000, () => 0.5, policy)).toBe(16_000);
  });

  test("attempt numbers start at 1", () => {
    expect(() => nextAttemptDelayMs(0, undefined, Math.random, policy)).toThrow(RangeError);
  });
});
