import { describe, expect, test } from "bun:test";
import { createPicker, createRandom } from "./random.ts";

describe("createRandom", () => {
  test("the same seed gives the same sequence, another seed another", () => {
    const take = (seed: number) => Array.from({ length: 100 }, createRandom(seed));
    expect(take(42)).toEqual(take(42));
    expect(take(42)).not.toEqual(take(43));
  });

  test("values are in [0, 1) and spread evenly", () => {
    const random = createRandom(7);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const value = random();
      expect(value >= 0 && value < 1).toBe(true);
      buckets[Math.floor(value * 10)]++;
    }
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});

describe("createPicker", () => {
  test("picks in proportion to the weights", () => {
    const pick = createPicker(
      [
        { value: "a", weight: 3 },
        { value: "b", weight: 1 },
        { value: "c", weight: 0.5 },
      ],
      createRandom(1),
    );
    const counts = new Map<string, number>();
    for (let i = 0; i < 90_000; i++) {
      const value = pick();
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    expect(Math.abs((counts.get("a") ?? 0) / 90_000 - 3 / 4.5)).toBeLessThan(0.01);
    expect(Math.abs((counts.get("b") ?? 0) / 90_000 - 1 / 4.5)).toBeLessThan(0.01);
    expect(Math.abs((counts.get("c") ?? 0) / 90_000 - 0.5 / 4.5)).toBeLessThan(0.01);
  });

  test("the edges of the range pick the first and last entry", () => {
    const entries = [
      { value: 1, weight: 1 },
      { value: 2, weight: 1 },
    ];
    expect(createPicker(entries, () => 0)()).toBe(1);
    expect(createPicker(entries, () => 0.999_999)()).toBe(2);
  });

  test("rejects an empty list and non-positive weights", () => {
    expect(() => createPicker([], Math.random)).toThrow(RangeError);
    expect(() => createPicker([{ value: 1, weight: 0 }], Math.random)).toThrow(RangeError);
    expect(() => createPicker([{ value: 1, weight: Number.NaN }], Math.random)).toThrow(RangeError);
  });
});
