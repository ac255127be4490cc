/** Seeded randomness and result normalisation shared by the matching, snapshot and wire tests. */
import type { ClientMatch, Rule } from "../src/core/matching/types.ts";

/** Seeded, so a failing property case can be replayed from its seed. */
export { createRandom as prng } from "../src/core/random.ts";

export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

export function randomUuid(random: () => number): string {
  let hex = "";
  for (let i = 0; i < 32; i++) hex += Math.floor(random() * 16).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Rules over small alphabets, so that collisions, shared clients and wildcards are frequent.
 * Never `*` on all three fields.
 */
export function randomRules(random: () => number, count: number, alphabet: readonly string[]): Rule[] {
  const clients = Array.from({ length: 1 + Math.floor(random() * 6) }, () => randomUuid(random));
  const rules: Rule[] = [];
  while (rules.length < count) {
    const severity = Math.floor(random() * 5);
    const source = random() < 0.35 ? "*" : pick(random, alphabet);
    const name = random() < 0.35 ? "*" : pick(random, alphabet);
    if (severity === 0 && source === "*" && name === "*") continue;
    rules.push({ ruleId: randomUuid(random), clientId: pick(random, clients), severity, source, name });
  }
  return rules;
}

/** Order-insensitive form of a match result: clients sorted, each client's rule ids sorted. */
export function normalise(matches: readonly ClientMatch[]): { clientId: string; ruleIds: string[] }[] {
  return matches
    .map(({ clientId, ruleIds }) => ({ clientId, ruleIds: [...ruleIds].sort() }))
    .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}
