import { describe, expect, test } from "bun:test";
import { prng } from "../../../harness/random-rules.ts";
import { PairMap } from "./pair-map.ts";

describe("PairMap", () => {
  test("gets what was set, by both halves of the pair", () => {
    const map = new PairMap<string>();
    map.set(0, 0, "a");
    map.set(0, 1, "b");
    map.set(1, 0, "c");
    map.set(0, 1, "B"); // replaced
    expect(map.size).toBe(3);
    expect([map.get(0, 0), map.get(0, 1), map.get(1, 0), map.get(1, 1)]).toEqual(["a", "B", "c", undefined]);
  });

  test("keeps every entry through many growths, like a Map", () => {
    const random = prng(7);
    const map = new PairMap<number>();
    const reference = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      // Small and large values, many sharing one half, so hashes collide and probe runs wrap around.
      const a = random() < 0.5 ? Math.floor(random() * 64) : Math.floor(random() * 2 ** 31);
      const b = Math.floor(random() * 300);
      map.set(a, b, i);
      reference.set(`${a},${b}`, i);
    }
    expect(map.size).toBe(reference.size);
    for (const [key, value] of reference) {
      const [a, b] = key.split(",").map(Number) as [number, number];
      if (map.get(a, b) !== value) expect({ key, value: map.get(a, b) }).toEqual({ key, value });
    }
    expect(map.get(2 ** 31 - 1, 300)).toBeUndefined();
  });

  test("clear forgets every entry", () => {
    const map = new PairMap<number>();
    for (let i = 0; i < 100; i++) map.set(i, i, i);
    map.clear();
    expect(map.size).toBe(0);
    expect(map.get(5, 5)).toBeUndefined();
    map.set(7, 7, 70);
    expect(map.get(7, 7)).toBe(70);
  });
});
