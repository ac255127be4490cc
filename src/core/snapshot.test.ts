import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { pick, prng, randomRules, randomUuid } from "../../harness/random-rules.ts";
import { RulesSnapshotSchema } from "../gen/alerting/v1/rule_pb.ts";
import type { Grant, Rule } from "./matching/types.ts";
import { DEFAULT_RULE_POLICY, isDefaultRulePolicy } from "./policy.ts";
import type { OpenSilence } from "./silence.ts";
import {
  buildSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  formatUuid,
  parseUuid,
  policyMessage,
  type RulePolicyEntry,
  type Snapshot,
  SnapshotBuilder,
  SnapshotError,
  sameGrants,
  samePolicies,
  sameRules,
  sameSilences,
  silenceMessage,
  snapshotGrants,
  snapshotRules,
} from "./snapshot.ts";

const alphabet = ["a", "b", "Zürich ☃", "", "x".repeat(200)];

/** The same snapshot as a @bufbuild/protobuf message. */
function asMessage(snapshot: Snapshot) {
  return create(RulesSnapshotSchema, {
    ...snapshot,
    ruleClient: Array.from(snapshot.ruleClient),
    ruleSeverity: Array.from(snapshot.ruleSeverity),
    ruleSource: Array.from(snapshot.ruleSource),
    ruleName: Array.from(snapshot.ruleName),
    grantClient: Array.from(snapshot.grantClient),
    silences: snapshot.silences.map(silenceMessage),
    policies: snapshot.policies.map(policyMessage),
  });
}

/**
 * Settings for some of the rules, in rule id order, of every kind: zero and large intervals, empty and
 * full lists; plus one for a rule the snapshot does not hold (left out by the build).
 */
function randomPolicies(
  random: () => number,
  rules: readonly Rule[],
): { all: RulePolicyEntry[]; kept: RulePolicyEntry[] } {
  const kept = rules
    .filter(() => random() < 0.3)
    .map((rule) => {
      const policy = {
        sendResolved: random() < 0.5,
        repeatIntervalMs: random() < 0.5 ? null : 2_073_600_000,
        groupBy: random() < 0.5 ? [] : ["source", "Zürich ☃"],
        groupWaitMs: random() < 0.5 ? null : 0,
        groupIntervalMs: random() < 0.5 ? null : 1_000,
        groupAlertsMax: random() < 0.5 ? null : 1,
        muteWindows: random() < 0.5 ? [] : ["monday:friday 22:00-06:00 Europe/Berlin", "* 00:00-24:00"],
      };
      // Only rules with settings other than the defaults are listed.
      return {
        ruleId: rule.ruleId,
        policy: isDefaultRulePolicy(policy) ? { ...policy, sendResolved: false } : policy,
      };
    })
    .sort((a, b) => (a.ruleId < b.ruleId ? -1 : 1));
  const stray = { ruleId: randomUuid(random), policy: { ...DEFAULT_RULE_POLICY, sendResolved: false } };
  return { all: [stray, ...kept.toReversed()], kept };
}

const scopeNames = ["team-a", "shared.x_1", "0", "z".repeat(63)];

/**
 * Grants of random shared scopes to the rules' clients, each (scope, client) at most once, and as many
 * again to clients without rules (which a snapshot leaves out). Returns both and the kept ones.
 */
function randomGrants(random: () => number, rules: readonly Rule[]): { all: Grant[]; kept: Grant[] } {
  const clients = [...new Set(rules.map((rule) => rule.clientId))];
  const seen = new Set<string>();
  const kept: Grant[] = [];
  const all: Grant[] = [];
  for (let i = 0; i < clients.length * 2; i++) {
    const grant = { scope: pick(random, scopeNames), clientId: pick(random, clients) };
    if (seen.has(`${grant.scope} ${grant.clientId}`)) continue;
    seen.add(`${grant.scope} ${grant.clientId}`);
    kept.push(grant);
    all.push(grant, { scope: pick(random, scopeNames), clientId: randomUuid(random) });
  }
  return { all, kept };
}

/** Silences of the rules' clients, with matchers of every kind. */
function randomSilences(
  random: () => number,
  rules: readonly Rule[],
  count = Math.floor(random() * 4),
): OpenSilence[] {
  const clients = [...new Set(rules.map((rule) => rule.clientId))];
  return Array.from({ length: clients.length === 0 ? 0 : count }, (_, i) => ({
    id: randomUuid(random),
    clientId: pick(random, clients),
    startsAtMs: 1_700_000_000_000 + i,
    endsAtMs: 1_700_000_360_000 + i * 1000,
    matchers: [
      { name: "alertname", value: pick(random, alphabet) || "x", isRegex: false, isEqual: true },
      { name: "env", value: "prod-.*", isRegex: true, isEqual: random() < 0.5 },
    ],
  }));
}

function sample(seed: number, count = 50): { rules: Rule[]; grants: Grant[]; snapshot: Snapshot } {
  const random = prng(seed);
  const rules = randomRules(random, count, alphabet);
  const { all, kept } = randomGrants(random, rules);
  return {
    rules,
    grants: kept,
    snapshot: buildSnapshot(rules, BigInt(seed) * 1_000_003n, 1_700_000_000_000n, all),
  };
}

describe("snapshot codec", () => {
  test("encodeSnapshot writes exactly toBinary's bytes, decodeSnapshot reads exactly fromBinary's values", () => {
    const versions = [0n, 1n, -1n, 9223372036854775807n, -9223372036854775808n];
    for (let seed = 1; seed <= 200; seed++) {
      const random = prng(seed);
      const rules = randomRules(random, Math.floor(random() * 60), alphabet);
      const grants = seed % 3 === 0 ? { all: [], kept: [] } : randomGrants(random, rules);
      const version = versions[seed % versions.length] as bigint;
      const silences = randomSilences(random, rules);
      const policies = randomPolicies(random, rules);
      const snapshot = buildSnapshot(rules, version, BigInt(seed), grants.all, silences, policies.all);
      const bytes = encodeSnapshot(snapshot);
      expect(bytes).toEqual(toBinary(RulesSnapshotSchema, asMessage(snapshot)));
      expect(asMessage(decodeSnapshot(bytes))).toEqual(fromBinary(RulesSnapshotSchema, bytes));
      expect(snapshotRules(decodeSnapshot(bytes))).toEqual(rules);
      expect(snapshotGrants(decodeSnapshot(bytes))).toEqual(grants.kept);
      expect(decodeSnapshot(bytes).silences).toEqual(silences);
      expect(decodeSnapshot(bytes).policies).toEqual(policies.kept);
      expect(samePolicies(decodeSnapshot(bytes), { ...snapshot, policies: policies.kept.toReversed() })).toBe(
        true,
      );
    }
  });

  test("large column values and a clientless empty snapshot encode like toBinary", () => {
    const empty = buildSnapshot([], 5n, 0n);
    expect(encodeSnapshot(empty)).toEqual(toBinary(RulesSnapshotSchema, asMessage(empty)));
    expect(decodeSnapshot(encodeSnapshot(empty))).toEqual(empty);
    const wide = { ...empty, ruleClient: new Uint32Array([0, 127, 128, 16383, 16384, 4294967295]) };
    expect(encodeSnapshot(wide)).toEqual(toBinary(RulesSnapshotSchema, asMessage(wide)));
    const wideGrants = {
      ...empty,
      grantScopes: ["a", "b", "c"],
      grantClient: new Uint32Array([0, 300, 70000]),
    };
    expect(encodeSnapshot(wideGrants)).toEqual(toBinary(RulesSnapshotSchema, asMessage(wideGrants)));
  });

  test("a grant to a client without rules is left out: the snapshot interns only clients with rules", () => {
    const { rules, grants, snapshot } = sample(12, 20);
    expect(grants.length).toBeGreaterThan(0);
    expect(snapshot.clientIds.length / 16).toBe(new Set(rules.map((rule) => rule.clientId)).size);
    expect(snapshotGrants(snapshot)).toEqual(grants);
    expect(snapshotGrants(decodeSnapshot(encodeSnapshot(snapshot)))).toEqual(grants);
  });

  test("columns split over several packed occurrences concatenate, unknown fields are skipped", () => {
    const { rules, snapshot } = sample(3, 10);
    expect(snapshot.grantClient.length).toBeGreaterThan(0);
    const first = {
      ...snapshot,
      ruleIds: snapshot.ruleIds.slice(0, 16 * 4),
      ruleClient: snapshot.ruleClient.slice(0, 4),
    };
    const rest = create(RulesSnapshotSchema, {
      ruleClient: Array.from(snapshot.ruleClient.slice(4)),
      grantClient: Array.from(snapshot.grantClient),
    });
    const unknown = new Uint8Array([0x98, 0x06, 0x01]); // field 99, varint 1
    const bytes = Buffer.concat([
      encodeSnapshot({ ...first, ruleIds: snapshot.ruleIds, grantClient: new Uint32Array(0) }),
      unknown,
      toBinary(RulesSnapshotSchema, rest),
    ]);
    expect(snapshotRules(decodeSnapshot(bytes))).toEqual(rules);
    expect(decodeSnapshot(bytes).grantClient).toEqual(snapshot.grantClient);
  });

  test("uuid text <-> bytes", () => {
    const random = prng(5);
    const out = new Uint8Array(16);
    for (let i = 0; i < 100; i++) {
      const id = randomUuid(random);
      expect(parseUuid(id, out, 0)).toBe(true);
      expect(formatUuid(out, 0)).toBe(id);
      expect(Buffer.from(out).toString("hex")).toBe(id.replaceAll("-", ""));
    }
    expect(parseUuid("0123ABCD-0000-0000-0000-00000000000F", out, 0)).toBe(true);
    expect(formatUuid(out, 0)).toBe("0123abcd-0000-0000-0000-00000000000f");
    for (const bad of [
      "",
      "0123abcd00000000000000000000000f",
      "0123abcd-0000-0000-0000-00000000000g",
      "0123abcd-0000-0000-0000_00000000000f",
      "0123abcd-0000-0000-0000-00000000000ü",
      "{0123abcd-0000-0000-0000-00000000}",
    ]) {
      expect(parseUuid(bad, out, 0)).toBe(false);
    }
  });
});

describe("SnapshotBuilder", () => {
  test("grows past its first capacity; clients and strings keep their order of first appearance", () => {
    const random = prng(8);
    const alphabetOf = (size: number) => Array.from({ length: size }, (_, i) => `v${i}-${random()}`);
    const rules = randomRules(random, 5000, alphabetOf(3000)).map((rule) => ({
      ...rule,
      clientId: randomUuid(random), // a new client per rule: 5000 clients
    }));
    const builder = new SnapshotBuilder(1);
    const ids = new Uint8Array(32);
    for (const rule of rules) {
      parseUuid(rule.ruleId, ids, 0);
      parseUuid(rule.clientId, ids, 16);
      builder.add(
        ids,
        0,
        16,
        rule.severity,
        builder.internString(rule.source),
        builder.internString(rule.name),
      );
    }
    const granted = (rules[4321] as Rule).clientId;
    parseUuid(granted, ids, 16);
    expect(builder.addGrant("ops", ids, 16)).toBe(true);
    parseUuid(randomUuid(random), ids, 16);
    expect(builder.addGrant("ops", ids, 16)).toBe(false); // no rules: left out
    const snapshot = builder.build(3n, 4n);
    expect(snapshot).toEqual(buildSnapshot(rules, 3n, 4n, [{ scope: "ops", clientId: granted }]));
    expect(snapshotGrants(snapshot)).toEqual([{ scope: "ops", clientId: granted }]);
    expect(snapshotRules(snapshot)).toEqual(rules);
    expect(snapshot.strings).toEqual([
      "*",
      ...new Set(rules.flatMap((r) => [r.source, r.name]).filter((v) => v !== "*")),
    ]);
  });

  test("internUtf8 and internString agree on every string", () => {
    const builder = new SnapshotBuilder();
    const values = ["*", ...alphabet, "tab\t", "\u0000 nul"];
    const byString = values.map((value) => builder.internString(value));
    const utf8 = new TextEncoder();
    expect(
      values.map((value) => builder.internUtf8(utf8.encode(value), 0, utf8.encode(value).length)),
    ).toEqual(byString);
    expect(byString[0]).toBe(0);
  });
});

describe("sameRules", () => {
  const shuffled = <T>(random: () => number, items: readonly T[]): T[] => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  };

  test("holds for the same rules in any order and interning, fails on any one change", () => {
    for (let seed = 1; seed <= 100; seed++) {
      const random = prng(seed);
      const rules = randomRules(random, 1 + Math.floor(random() * 40), alphabet);
      const a = buildSnapshot(rules, 1n, 0n);
      expect(sameRules(a, buildSnapshot(rules, 2n, 9n))).toBe(true);
      expect(sameRules(a, buildSnapshot(shuffled(random, rules), 2n, 9n))).toBe(true);
      const i = Math.floor(random() * rules.length);
      const rule = rules[i] as Rule;
      const changes: Partial<Rule>[] = [
        { ruleId: randomUuid(random) },
        { clientId: randomUuid(random) },
        { severity: (rule.severity % 4) + 1 },
        { source: `${rule.source}!` },
        { name: `${rule.name}!` },
      ];
      for (const change of changes) {
        const changed = rules.map((r, k) => (k === i ? { ...r, ...change } : r));
        expect(sameRules(a, buildSnapshot(changed, 1n, 0n))).toBe(false);
        expect(sameRules(buildSnapshot(changed, 1n, 0n), a)).toBe(false);
      }
      expect(sameRules(a, buildSnapshot(rules.slice(1), 1n, 0n))).toBe(false);
    }
  });

  test("sameGrants holds for the same grants in any order, fails on any one change", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const random = prng(seed);
      const rules = randomRules(random, 1 + Math.floor(random() * 30), alphabet);
      const { kept } = randomGrants(random, rules);
      const a = buildSnapshot(rules, 1n, 0n, kept);
      expect(sameGrants(a, buildSnapshot(shuffled(random, rules), 2n, 0n, shuffled(random, kept)))).toBe(
        true,
      );
      if (kept.length === 0) continue;
      const i = Math.floor(random() * kept.length);
      const grant = kept[i] as Grant;
      const renamed = kept.map((g, k) => (k === i ? { ...g, scope: `${g.scope.slice(0, 50)}-other` } : g));
      const others = rules.filter((rule) => rule.clientId !== grant.clientId);
      const moved = kept.map((g, k) => (k === i && others[0] ? { ...g, clientId: others[0].clientId } : g));
      for (const changed of [kept.slice(1), renamed, ...(others[0] ? [moved] : [])]) {
        if (new Set(changed.map((g) => `${g.scope} ${g.clientId}`)).size < changed.length) continue;
        expect(sameGrants(a, buildSnapshot(rules, 1n, 0n, changed))).toBe(false);
        expect(sameGrants(buildSnapshot(rules, 1n, 0n, changed), a)).toBe(false);
      }
      // Rules alone do not see grants.
      expect(sameRules(a, buildSnapshot(rules, 1n, 0n))).toBe(true);
    }
  });

  test("a repeated rule id makes snapshots differ, empty ones are the same", () => {
    const [first, second] = randomRules(prng(4), 2, alphabet) as [Rule, Rule];
    const twice = buildSnapshot([first, { ...first, name: "other" }], 1n, 0n);
    expect(sameRules(twice, buildSnapshot([first, second], 1n, 0n))).toBe(false);
    expect(sameRules(buildSnapshot([first, second], 1n, 0n), twice)).toBe(false);
    expect(sameRules(buildSnapshot([], 1n, 0n), buildSnapshot([], 2n, 0n))).toBe(true);
  });
});

describe("sameSilences", () => {
  test("holds for the same silences in any order, fails on any one change", () => {
    const { rules } = sample(5);
    const silences = randomSilences(prng(7), rules, 3);
    const build = (list: OpenSilence[]) => buildSnapshot(rules, 1n, 0n, [], list);
    expect(silences.length).toBeGreaterThan(1);
    const base = build(silences);
    expect(sameSilences(base, build(silences.toReversed()))).toBe(true);
    expect(sameSilences(base, build(silences.slice(1)))).toBe(false);
    const [first, ...rest] = silences as [OpenSilence, ...OpenSilence[]];
    expect(sameSilences(base, build([{ ...first, endsAtMs: first.endsAtMs + 1 }, ...rest]))).toBe(false);
  });
});

describe("snapshot validation", () => {
  const { snapshot } = sample(11);
  const silenceOf = (s: Snapshot): OpenSilence => ({
    id: "00000000-0000-4000-8000-000000000001",
    clientId: formatUuid(s.clientIds, 0),
    startsAtMs: 1,
    endsAtMs: 2,
    matchers: [{ name: "alertname", value: "x", isRegex: false, isEqual: true }],
  });
  const corruptions: [string, (s: Snapshot) => Snapshot, string][] = [
    ["wrong schema_version", (s) => ({ ...s, schemaVersion: 2 }), "schema_version 2, expected 1"],
    ["missing schema_version", (s) => ({ ...s, schemaVersion: 0 }), "schema_version 0, expected 1"],
    [
      "strings[0] is not *",
      (s) => ({ ...s, strings: ["a", ...s.strings.slice(1)] }),
      'strings[0] must be "*"',
    ],
    ["no strings", (s) => ({ ...s, strings: [] }), 'strings[0] must be "*"'],
    ["a second *", (s) => ({ ...s, strings: [...s.strings, "*"] }), '"*" appears in strings after index 0'],
    [
      "rule_ids not 16-byte",
      (s) => ({ ...s, ruleIds: s.ruleIds.slice(0, -1) }),
      "rule_ids length 799 is not a multiple of 16",
    ],
    ["client_ids not 16-byte", (s) => ({ ...s, clientIds: s.clientIds.slice(1) }), "is not a multiple of 16"],
    [
      "a column shorter",
      (s) => ({ ...s, ruleName: s.ruleName.slice(1) }),
      "rule_name has 49 entries, rule_ids has 50",
    ],
    [
      "client index out of range",
      (s) => ({ ...s, ruleClient: s.ruleClient.map(() => 99) }),
      "rule 0: rule_client 99 out of range",
    ],
    [
      "severity out of range",
      (s) => ({ ...s, ruleSeverity: s.ruleSeverity.map(() => 5) }),
      "rule 0: rule_severity 5 out of range",
    ],
    [
      "source index out of range",
      (s) => ({ ...s, ruleSource: s.ruleSource.map(() => 1000) }),
      "rule 0: rule_source 1000 out of range",
    ],
    [
      "name index out of range",
      (s) => ({ ...s, ruleName: s.ruleName.map(() => 1000) }),
      "rule 0: rule_name 1000 out of range",
    ],
    [
      "all-wildcard rule",
      (s) => ({
        ...s,
        ruleSeverity: s.ruleSeverity.map(() => 0),
        ruleSource: s.ruleSource.map(() => 0),
        ruleName: s.ruleName.map(() => 0),
      }),
      "* on every field",
    ],
    [
      "unused client",
      (s) => ({ ...s, clientIds: new Uint8Array([...s.clientIds, ...new Uint8Array(16)]) }),
      "has no rules",
    ],
    ["unused string", (s) => ({ ...s, strings: [...s.strings, "unused"] }), "is used by no rule"],
    [
      "a grant column shorter",
      (s) => ({ ...s, grantClient: s.grantClient.slice(1) }),
      `grant_client has ${snapshot.grantClient.length - 1} entries, grant_scopes has ${snapshot.grantClient.length}`,
    ],
    [
      "a grant to a client out of range",
      (s) => ({ ...s, grantClient: s.grantClient.map(() => 99) }),
      "grant 0: grant_client 99 out of range",
    ],
    [
      "a grant of a malformed scope name",
      (s) => ({ ...s, grantScopes: s.grantScopes.map(() => "Team A") }),
      'grant 0: "Team A" is not a shared scope name',
    ],
    [
      "a grant of a prefixed scope name",
      (s) => ({ ...s, grantScopes: s.grantScopes.map(() => "shared:x") }),
      "is not a shared scope name",
    ],
    [
      "a repeated grant",
      (s) => ({
        ...s,
        grantScopes: [...s.grantScopes, s.grantScopes[0] as string],
        grantClient: Uint32Array.from([...s.grantClient, s.grantClient[0] as number]),
      }),
      `grant ${snapshot.grantScopes.length}: repeats scope`,
    ],
    [
      "a silence with a bad regex",
      (s) => ({
        ...s,
        silences: [{ ...silenceOf(s), matchers: [{ name: "a", value: "(x", isRegex: true, isEqual: true }] }],
      }),
      "silence 0: matchers[0].value: invalid regular expression",
    ],
    [
      "a silence of a malformed client",
      (s) => ({ ...s, silences: [{ ...silenceOf(s), clientId: "client-a" }] }),
      "silence 0: id and client_id must be UUIDs",
    ],
    [
      "a silence ending before it starts",
      (s) => ({ ...s, silences: [{ ...silenceOf(s), endsAtMs: 0 }] }),
      "silence 0: starts after it ends",
    ],
  ];
  for (const [description, corrupt, reason] of corruptions) {
    test(`rejects ${description}`, () => {
      const bytes = encodeSnapshot(corrupt(snapshot));
      expect(() => decodeSnapshot(bytes)).toThrow(SnapshotError);
      expect(() => decodeSnapshot(bytes)).toThrow(reason);
    });
  }

  test("rejects unpacked columns and wrong wire types", () => {
    expect(() => decodeSnapshot(new Uint8Array([0x38, 0x00]))).toThrow(
      "rule_client: wire type 0, expected 2",
    );
    expect(() => decodeSnapshot(new Uint8Array([0x0a, 0x00]))).toThrow("field 1: wire type 2, expected 0");
    expect(() => decodeSnapshot(new Uint8Array([0x60, 0x00]))).toThrow(
      "grant_client: wire type 0, expected 2",
    );
    expect(() => decodeSnapshot(new Uint8Array([0x58, 0x00]))).toThrow("field 11: wire type 0, expected 2");
  });

  // Protobuf has no length or checksum: a cut right after strings[0] reads as a valid empty rule set, and
  // one right before the grants as the rules without grants (closed: shared scopes then reach nobody).
  test("every other truncation of an encoded snapshot is rejected with a SnapshotError", () => {
    for (let seed = 20; seed < 40; seed++) {
      const { snapshot } = sample(seed, 8);
      const bytes = encodeSnapshot(snapshot);
      const afterStar = bytes.indexOf(0x2a) + 1; // strings[0] is "*", the first 0x2a byte
      const beforeGrants = encodeSnapshot({
        ...snapshot,
        grantScopes: [],
        grantClient: new Uint32Array(0),
      }).length;
      for (let end = 0; end < bytes.length; end++) {
        if (end === afterStar) {
          expect(decodeSnapshot(bytes.subarray(0, end)).ruleIds.length).toBe(0);
        } else if (end === beforeGrants) {
          const cut = decodeSnapshot(bytes.subarray(0, end));
          expect(snapshotRules(cut)).toEqual(snapshotRules(snapshot));
          expect(cut.grantScopes).toEqual([]);
        } else {
          expect(() => decodeSnapshot(bytes.subarray(0, end))).toThrow(SnapshotError);
        }
      }
    }
  });

  test("building from invalid rules is a programmer error", () => {
    const good = {
      ruleId: randomUuid(prng(1)),
      clientId: randomUuid(prng(2)),
      severity: 1,
      source: "s",
      name: "n",
    };
    expect(() => buildSnapshot([{ ...good, ruleId: "nope" }], 1n, 0n)).toThrow(RangeError);
    expect(() => buildSnapshot([{ ...good, clientId: "nope" }], 1n, 0n)).toThrow(RangeError);
    expect(() => buildSnapshot([{ ...good, severity: 9 }], 1n, 0n)).toThrow(RangeError);
    expect(() => buildSnapshot([good], 1n, 0n, [{ scope: "ok", clientId: "nope" }])).toThrow(RangeError);
    expect(() => buildSnapshot([good], 1n, 0n, [{ scope: "Not OK", clientId: good.clientId }])).toThrow(
      RangeError,
    );
  });
});
