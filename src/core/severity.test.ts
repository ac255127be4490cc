import { describe, expect, test } from "bun:test";
import { Severity } from "../gen/alerting/v1/alert_pb.ts";
import {
  isSeverityNumber,
  parseSeverity,
  parseSeverityPattern,
  SEVERITY_WILDCARD,
  SeverityError,
  severityName,
  severityPatternName,
} from "./severity.ts";

describe("severity", () => {
  test("names map to the wire enum numbers", () => {
    expect(parseSeverity("LOW")).toBe(Severity.LOW);
    expect(parseSeverity("MEDIUM")).toBe(Severity.MEDIUM);
    expect(parseSeverity("HIGH")).toBe(Severity.HIGH);
    expect(parseSeverity("CRITICAL")).toBe(Severity.CRITICAL);
    for (const n of [1, 2, 3, 4]) expect(parseSeverity(severityName(n))).toBe(n);
  });

  test("the wildcard is accepted only as a pattern", () => {
    expect(parseSeverityPattern("*")).toBe(SEVERITY_WILDCARD);
    expect(parseSeverityPattern("HIGH")).toBe(3);
    expect(severityPatternName(SEVERITY_WILDCARD)).toBe("*");
    expect(() => parseSeverity("*")).toThrow(SeverityError);
  });

  test("bad input raises a typed error naming the field and reason", () => {
    for (const bad of ["high", "", " HIGH", "UNSPECIFIED", 3, null, undefined]) {
      let error: unknown;
      try {
        parseSeverity(bad, "rule.severity");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SeverityError);
      expect((error as SeverityError).field).toBe("rule.severity");
      expect((error as SeverityError).message).toStartWith("rule.severity: ");
    }
  });

  test("numbers outside 1..4 are not severities", () => {
    expect([0, 1, 4, 5, 2.5, -1].map(isSeverityNumber)).toEqual([false, true, true, false, false, false]);
    expect(() => severityName(0)).toThrow(RangeError);
    expect(() => severityName(5)).toThrow(RangeError);
  });
});
