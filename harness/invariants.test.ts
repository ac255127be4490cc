import { describe, expect, test } from "bun:test";
import { countDeliveries, offsetGaps } from "./invariants.ts";

describe("countDeliveries", () => {
  test("all delivered once", () => {
    expect(countDeliveries(["a", "b"], ["b", "a"])).toEqual({
      expected: 2,
      delivered: 2,
      lost: [],
      duplicated: [],
      unexpected: [],
    });
  });
  test("finds lost, duplicated and unexpected ids", () => {
    const count = countDeliveries(["a", "b", "c"], ["a", "a", "c", "x"]);
    expect(count.lost).toEqual(["b"]);
    expect(count.duplicated).toEqual(["a"]);
    expect(count.unexpected).toEqual(["x"]);
    expect(count.delivered).toBe(2);
  });
});

describe("offsetGaps", () => {
  test("contiguous offsets have no gaps", () => {
    expect(offsetGaps([4, 5, 6, 7])).toEqual([]);
  });
  test("reports skips and rewinds", () => {
    expect(offsetGaps([1, 2, 5, 3])).toEqual([
      { from: 2, to: 5 },
      { from: 5, to: 3 },
    ]);
  });
});
