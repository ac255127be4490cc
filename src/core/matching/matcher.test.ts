import { describe, expect, test } from "bun:test";
import { normalise, pick, prng, randomRules } from "../../../harness/random-rules.ts";
import { buildSnapshot, decodeSnapshot, encodeSnapshot, snapshotRules } from "../snapshot.ts";
import { CompiledMatcher, type CompiledMatcherOptions } from "./compiled.ts";
import { ReferenceMatcher } from "./reference.ts";
import { type ClientMatch, type Matcher, NO_MATCHES, type Rule } from "./types.ts";

const A = "00000000-0000-0000-0000-00000000000a";
const B = "00000000-0000-0000-0000-00000000000b";
const rule = (ruleId: string, clientId: string, severity: number, source: string, name: string): Rule => ({
  ruleId,
  clientId,
  severity,
  source,
  name,
});

const rules: Rule[] = [
  rule("exact", A, 3, "db", "disk_full"),
  rule("sev-src", A, 3, "db", "*"),
  rule("sev-name", B, 4, "*", "disk_full"),
  rule("sev-only", B, 4, "*", "*"),
  rule("src-name", A, 0, "web", "latency"),
  rule("src-only", B, 0, "web", "*"),
  rule("name-only", B, 0, "*", "oom"),
  rule("case", A, 1, "Api", "Down"),
  rule("star-literal-name", A, 2, "cron", "*"),
];

/** [description, severity, source, name, expected { clientId: ruleIds }] */
const cases: [string, number, string, string, Record<string, string[]>][] = [
  ["no rule matches", 1, "nothing", "here", {}],
  [
    "exact match, plus the same client's source wildcard",
    3,
    "db",
    "disk_full",
    { [A]: ["exact", "sev-src"] },
  ],
  ["severity differs from every rule", 2, "db", "disk_full", {}],
  ["severity+source rule with any name", 3, "db", "anything", { [A]: ["sev-src"] }],
  ["severity+name and severity-only, same client", 4, "x", "disk_full", { [B]: ["sev-name", "sev-only"] }],
  ["severity-only", 4, "x", "y", { [B]: ["sev-only"] }],
  ["source+name for every severity", 1, "web", "latency", { [A]: ["src-name"], [B]: ["src-only"] }],
  ["source-only", 2, "web", "other", { [B]: ["src-only"] }],
  ["name-only", 3, "any", "oom", { [B]: ["name-only"] }],
  ["several patterns and clients at once", 4, "web", "oom", { [B]: ["sev-only", "src-only", "name-only"] }],
  ["matching is case-sensitive", 1, "api", "down", {}],
  ["exact case matches", 1, "Api", "Down", { [A]: ["case"] }],
  ["a literal * in the alert matches only wildcard rules", 2, "*", "*", {}],
  [
    "an unknown alert severity matches only severity-wildcard rules",
    9,
    "web",
    "oom",
    { [B]: ["src-only", "name-only"] },
  ],
  ["empty strings are ordinary values", 3, "", "", {}],
];

/** Through the evaluator's load path: rules -> snapshot bytes -> CompiledMatcher.fromSnapshot. */
const fromSnapshotBytes = (r: Rule[], options?: CompiledMatcherOptions) =>
  CompiledMatcher.fromSnapshot(decodeSnapshot(encodeSnapshot(buildSnapshot(r, 1n, 0n))), options);

/** Rule ids must be UUIDs in a snapshot: the same rule set with ids mapped to UUIDs and back. */
function viaUuids(rules: Rule[]): {
  rules: Rule[];
  back: (matches: readonly ClientMatch[]) => ClientMatch[];
} {
  const ids = new Map<string, string>();
  const uuid = (id: string) => {
    let mapped = ids.get(id);
    if (mapped === undefined) {
      mapped = `00000000-0000-4000-8000-${ids.size.toString(16).padStart(12, "0")}`;
      ids.set(id, mapped);
    }
    return mapped;
  };
  const mapped = rules.map((r) => ({ ...r, ruleId: uuid(r.ruleId), clientId: uuid(r.clientId) }));
  const reverse = new Map(Array.from(ids, ([id, mapped]) => [mapped, id]));
  const original = (id: string) => reverse.get(id) ?? id;
  return {
    rules: mapped,
    back: (matches) =>
      matches.map((m) => ({ clientId: original(m.clientId), ruleIds: m.ruleIds.map(original) })),
  };
}

const implementations: [string, (rules: Rule[]) => Matcher][] = [
  ["reference", (r) => new ReferenceMatcher(r)],
  ["compiled", (r) => new CompiledMatcher(r)],
  ["compiled without result cache", (r) => new CompiledMatcher(r, { resultCacheSize: 0 })],
  [
    "compiled from a snapshot",
    (r) => {
      const { rules: mapped, back } = viaUuids(r);
      const matcher = fromSnapshotBytes(mapped);
      return { match: (severity, source, name) => back(matcher.match(severity, source, name)) };
    },
  ],
];

for (const [implementation, make] of implementations) {
  describe(`${implementation} matcher`, () => {
    const matcher = make(rules);
    for (const [description, severity, source, name, expected] of cases) {
      test(description, () => {
        const want = Object.entries(expected).map(([clientId, ruleIds]) => ({ clientId, ruleIds }));
        expect(normalise(matcher.match(severity, source, name))).toEqual(normalise(want));
      });
    }

    test("an empty rule set matches nothing", () => {
      expect(make([]).match(3, "db", "disk_full")).toEqual([]);
    });
  });
}

describe("compiled matcher specifics", () => {
  const matcher = new CompiledMatcher(rules);

  test("a miss returns the one shared empty array", () => {
    expect(matcher.match(1, "nothing", "here")).toBe(NO_MATCHES);
  });

  test("a single-pattern hit returns the same precomputed groups every time", () => {
    const first = matcher.match(3, "db", "anything");
    expect(matcher.match(3, "db", "other")).toBe(first);
  });

  test("a repeated alert gets the very same result, merged or not", () => {
    const merged = matcher.match(4, "web", "oom");
    expect(merged.length).toBe(1);
    expect(matcher.match(4, "web", "oom")).toBe(merged);
  });

  test("a client's group is the same object in every result it appears unchanged in", () => {
    const uncached = new CompiledMatcher(rules, { resultCacheSize: 0 });
    const alone = uncached.match(2, "web", "other"); // src-only alone
    const withOthers = uncached.match(1, "web", "latency"); // src-name (A) + src-only (B)
    expect(withOthers).toContain(alone[0] as ClientMatch);
  });

  test("rejects rules that are programmer errors", () => {
    expect(() => new CompiledMatcher([rule("r", A, 0, "*", "*")])).toThrow(RangeError);
    expect(() => new CompiledMatcher([rule("r", A, 5, "s", "n")])).toThrow(RangeError);
  });
});

describe("compiled equals reference on random rule sets", () => {
  const alphabet = ["a", "b", "c", "A", ""];
  const viaSnapshot = (rules: Rule[]) =>
    snapshotRules(decodeSnapshot(encodeSnapshot(buildSnapshot(rules, 1n, 0n))));

  // A 30-word cache generation holds 2 or 3 results, so cached, promoted and computed results all get checked.
  for (const [description, compile] of [
    ["rules used as given", (rules: Rule[]) => new CompiledMatcher(rules)],
    [
      "rules used as given, tiny result cache",
      (rules: Rule[]) => new CompiledMatcher(rules, { resultCacheSize: 30 }),
    ],
    [
      "rules used as given, no result cache",
      (rules: Rule[]) => new CompiledMatcher(rules, { resultCacheSize: 0 }),
    ],
    [
      "rules after a snapshot encode/decode round trip",
      (rules: Rule[]) => new CompiledMatcher(viaSnapshot(rules)),
    ],
    ["CompiledMatcher.fromSnapshot of the decoded bytes", (rules: Rule[]) => fromSnapshotBytes(rules)],
    [
      "CompiledMatcher.fromSnapshot, tiny result cache",
      (rules: Rule[]) => fromSnapshotBytes(rules, { resultCacheSize: 30 }),
    ],
    [
      "CompiledMatcher.fromSnapshot of buildSnapshot's snapshot",
      (rules: Rule[]) => CompiledMatcher.fromSnapshot(buildSnapshot(rules, 1n, 0n)),
    ],
  ] as const) {
    test(`${description}: 500 seeded rule sets, 200 alerts each`, () => {
      for (let seed = 1; seed <= 500; seed++) {
        const random = prng(seed);
        const ruleSet = randomRules(random, Math.floor(random() * 40), alphabet);
        checkAgainstReference(seed, random, compile(ruleSet), ruleSet);
      }
    });
  }

  function checkAgainstReference(seed: number, random: () => number, compiled: Matcher, ruleSet: Rule[]) {
    const reference = new ReferenceMatcher(ruleSet);
    for (let i = 0; i < 200; i++) {
      const severity = Math.floor(random() * 6);
      const source = pick(random, alphabet);
      const name = random() < 0.1 ? "*" : pick(random, alphabet);
      const got = normalise(compiled.match(severity, source, name));
      const want = normalise(reference.match(severity, source, name));
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        expect({ seed, severity, source, name, got }).toEqual({ seed, severity, source, name, got: want });
      }
    }
  }
});
