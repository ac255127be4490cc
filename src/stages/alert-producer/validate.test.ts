import { describe, expect, test } from "bun:test";
import { parseTimestampMs } from "./validate.ts";

describe("parseTimestampMs", () => {
  test.each([
    ["2024-05-01T12:00:00Z", Date.UTC(2024, 4, 1, 12)],
    ["2024-05-01t12:00:00z", Date.UTC(2024, 4, 1, 12)],
    ["2024-05-01 12:00:00Z", Date.UTC(2024, 4, 1, 12)],
    ["2024-05-01T14:00:00.5+02:00", Date.UTC(2024, 4, 1, 12, 0, 0, 500)],
    // Go sends nanoseconds: cut to milliseconds.
    ["2024-05-01T12:00:00.123456789Z", Date.UTC(2024, 4, 1, 12, 0, 0, 123)],
  ])("%s", (text, ms) => {
    expect(parseTimestampMs(text)).toBe(ms);
  });

  test.each([
    "2024-05-01",
    "2024-05-01T12:00:00",
    "May 1 2024",
    "2024-13-01T00:00:00Z",
    "2024-05-01T12:00:00.1234567890Z",
    "",
  ])("rejects %p", (text) => {
    expect(parseTimestampMs(text)).toBeUndefined();
  });
});
