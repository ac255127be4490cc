/**
 * Deterministic randomness for the load generator: a seeded PRNG and weighted picking, so the same
 * seed and flags always produce the same alert stream.
 */

export { createRandom } from "../../core/random.ts";

export interface Weighted<T> {
  value: T;
  weight: number;
}

/** Picks values with probability weight / total weight. Weights must be positive and finite. */
export function createPicker<T>(entries: readonly Weighted<T>[], random: () => number): () => T {
  if (entries.length === 0) throw new RangeError("nothing to pick from");
  const cumulative: number[] = [];
  let total = 0;
  for (const { weight } of entries) {
    if (!(weight > 0 && Number.isFinite(weight))) throw new RangeError(`bad weight ${weight}`);
    total += weight;
    cumulative.push(total);
  }
  return () => {
    const target = random() * total;
    // Binary search for the first cumulative weight above the target.
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((cumulative[middle] as number) > target) high = middle;
      else low = middle + 1;
    }
    return (entries[low] as Weighted<T>).value;
  };
}
