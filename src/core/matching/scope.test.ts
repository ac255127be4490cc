import { describe, expect, test } from "bun:test";
import { normalise, pick, prng, randomRules, randomUuid } from "../../../test/support/random-rules.ts";
import { buildSnapshot, snapshotGrants } from "../snapshot.ts";
import { CompiledMatcher } from "./compiled.ts";
import { ReferenceMatcher } from "./reference.ts";
import { clientScope, isSharedScopeName, ScopeFilter, sharedScope } from "./scope.ts";
import { type ClientMatch, type Grant, NO_MATCHES, type Rule } from "./types.ts";

const A = "00000000-0000-0000-0000-00000000000a";
const B = "00000000-0000-0000-0000-00000000000b";
const C = "00000000-0000-0000-0000-00000000000c";
const groups: readonly ClientMatch[] = [
  { clientId: A, ruleIds: ["a1"] },
  { clientId: B, ruleIds: ["b1", "b2"] },
  { clientId: C, ruleIds: ["c1"] },
];
const grants: Grant[] = [
  { scope: "ops", clientId: A },
  { scope: "ops", clientId: C },
  { scope: "b-only", clientId: B },
];

describe("ScopeFilter", () => {
  const filter = new ScopeFilter(grants);
  const clientsOf = (scope: string) => filter.admit(scope, groups)?.map((g) => g.clientId);

  test("each scope form reaches exactly its clients", () => {
    expect(filter.admit("", groups)).toBe(groups); // internal producers: every client, untouched
    expect(clientsOf(clientScope(A))).toEqual([A]);
    expect(clientsOf(clientScope(B))).toEqual([B]);
    expect(clientsOf(sharedScope("ops"))).toEqual([A, C]);
    expect(clientsOf(sharedScope("b-only"))).toEqual([B]);
    expect(filter.admit(clientScope(randomUuid(prng(1))), groups)).toBe(NO_MATCHES); // no such client here
    expect(filter.admit(sharedScope("granted-to-nobody"), groups)).toBe(NO_MATCHES);
  });

  test("anything else is malformed: undefined, whatever the match", () => {
    for (const scope of [
      "ops",
      "client:",
      "shared:",
      `client:${A.toUpperCase()}`,
      `client:${A} `,
      `client:{${A}}`,
      `CLIENT:${A}`,
      "shared:Ops",
      "shared:-ops",
      `shared:${"x".repeat(64)}`,
      "shared:ops\u0000",
      "shared:shared:ops",
      " ",
      "*",
      "x".repeat(100_000),
    ]) {
      expect({ scope, admitted: filter.admit(scope, groups) }).toEqual({ scope, admitted: undefined });
      expect({ scope, admitted: filter.admit(scope, NO_MATCHES) }).toEqual({ scope, admitted: undefined });
    }
    expect(filter.admit(`shared:${"x".repeat(63)}`, groups)).toBe(NO_MATCHES); // longest well-formed name
  });

  test("a repeated (result, scope) returns the same array: no allocation once seen", () => {
    const first = filter.admit(sharedScope("ops"), groups);
    expect(filter.admit(`shared:${"ops"}`, groups)).toBe(first as readonly ClientMatch[]);
    expect(filter.admit(clientScope(B), groups)).toBe(filter.admit(clientScope(B), groups) as ClientMatch[]);
    const onlyAandC = [groups[0], groups[2]] as ClientMatch[];
    expect(filter.admit(sharedScope("ops"), onlyAandC)).toBe(onlyAandC); // all kept: the input itself
    expect(filter.admit(sharedScope("ops"), NO_MATCHES)).toBe(NO_MATCHES);
  });

  test("more distinct scopes than it remembers still filter correctly", () => {
    for (let i = 0; i < 40_000; i++) {
      const id = `${i.toString(16).padStart(8, "0")}-0000-0000-0000-0000000000ff`;
      expect(filter.admit(clientScope(id), groups)).toBe(NO_MATCHES);
    }
    expect(clientsOf(clientScope(A))).toEqual([A]);
    expect(clientsOf(sharedScope("ops"))).toEqual([A, C]);
  });

  test("shared scope names", () => {
    for (const name of ["a", "0", "ops.eu-1_x", "z".repeat(63)]) expect(isSharedScopeName(name)).toBe(true);
    for (const name of ["", "A", "-a", ".a", "_a", "a b", "a/b", "z".repeat(64), "é"]) {
      expect(isSharedScopeName(name)).toBe(false);
    }
  });
});

/** The semantics as plainly as possible: only the rules of clients the scope reaches take part. */
function referenceMatch(
  rules: readonly Rule[],
  allGrants: readonly Grant[],
  scope: string,
  alert: [number, string, string],
): readonly ClientMatch[] {
  const reaches = (clientId: string) =>
    scope === "" ||
    scope === `client:${clientId}` ||
    allGrants.some((g) => g.clientId === clientId && scope === `shared:${g.scope}`);
  return new ReferenceMatcher(rules.filter((rule) => reaches(rule.clientId))).match(...alert);
}

test("compiled match + scope filter = matching only the rules of clients the scope reaches (random)", () => {
  const alphabet = ["a", "b", "c", ""];
  const names = ["ops", "eu", "x.y"];
  for (let seed = 1; seed <= 150; seed++) {
    const random = prng(seed);
    const rules = randomRules(random, 1 + Math.floor(random() * 40), alphabet);
    const clients = [...new Set(rules.map((rule) => rule.clientId))];
    const offered = Array.from({ length: Math.floor(random() * 8) }, () => ({
      scope: pick(random, names),
      clientId: random() < 0.8 ? pick(random, clients) : randomUuid(random),
    }));
    const unique = [...new Map(offered.map((g) => [`${g.scope} ${g.clientId}`, g])).values()];
    const snapshot = buildSnapshot(rules, 1n, 0n, unique);
    const granted = snapshotGrants(snapshot);
    const filter = new ScopeFilter(granted);
    // The result cache on and off: cached results are shared arrays, uncached ones fresh each call.
    const matchers = [
      CompiledMatcher.fromSnapshot(snapshot),
      CompiledMatcher.fromSnapshot(snapshot, { resultCacheSize: 0 }),
    ];
    const scopes = [
      "",
      ...clients.map(clientScope),
      clientScope(randomUuid(random)),
      ...names.map(sharedScope),
      "shared:Bad",
      `client:${clients[0]?.toUpperCase()}`,
    ];
    for (let i = 0; i < 200; i++) {
      const alert: [number, string, string] = [
        Math.floor(random() * 5),
        pick(random, alphabet),
        pick(random, alphabet),
      ];
      const scope = pick(random, scopes);
      const malformed =
        scope === "shared:Bad" || (scope.startsWith("client:") && scope !== scope.toLowerCase());
      for (const matcher of matchers) {
        const admitted = filter.admit(scope, matcher.match(...alert));
        if (malformed) expect(admitted).toBeUndefined();
        else
          expect(normalise(admitted ?? [])).toEqual(normalise(referenceMatch(rules, granted, scope, alert)));
      }
    }
  }
});
