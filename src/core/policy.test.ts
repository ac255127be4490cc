import { describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { type DeliveryPolicy, DeliveryPolicySchema } from "../gen/alerting/v1/alert_pb.ts";
import {
  type ClientPolicy,
  DEFAULT_RULE_POLICY,
  groupByProblem,
  isDefaultRulePolicy,
  mutedBy,
  muteWindowsProblem,
  PolicyBook,
  type RulePolicy,
} from "./policy.ts";

const ruleA = "00000000-0000-4000-8000-00000000000a";
const ruleB = "00000000-0000-4000-8000-00000000000b";
const ruleC = "00000000-0000-4000-8000-00000000000c";

const policy = (fields: Partial<RulePolicy>): RulePolicy => ({ ...DEFAULT_RULE_POLICY, ...fields });

function delivery(client: ClientPolicy): DeliveryPolicy | undefined {
  return client.delivery === undefined ? undefined : fromBinary(DeliveryPolicySchema, client.delivery);
}

describe("PolicyBook.forRules merges the settings of one client's matched rules", () => {
  test("rules with the defaults only: no policy on the wire, never muted", () => {
    const book = new PolicyBook(new Map([[ruleC, policy({ sendResolved: false })]]));
    expect(book.forRules([ruleA, ruleB])).toEqual({ delivery: undefined, muting: undefined });
  });

  test("resolved notifications are skipped only when every matched rule skips them", () => {
    const book = new PolicyBook(
      new Map([
        [ruleA, policy({ sendResolved: false })],
        [ruleB, policy({ sendResolved: false })],
      ]),
    );
    expect(delivery(book.forRules([ruleA, ruleB]))?.skipResolved).toBe(true);
    // ruleC keeps the default: it sends them.
    expect(delivery(book.forRules([ruleA, ruleC]))).toBeUndefined();
  });

  test("the shortest repeat interval set wins; none set leaves the stage default", () => {
    const book = new PolicyBook(
      new Map([
        [ruleA, policy({ repeatIntervalMs: 60_000 })],
        [ruleB, policy({ repeatIntervalMs: 30_000 })],
        [ruleC, policy({ sendResolved: false })],
      ]),
    );
    expect(delivery(book.forRules([ruleA, ruleB, ruleC]))?.repeatIntervalMs).toBe(30_000n);
    expect(delivery(book.forRules([ruleC]))?.repeatIntervalMs).toBeUndefined();
  });

  test("forRules of one route's rules carries its grouping", () => {
    const book = new PolicyBook(
      new Map([
        [ruleB, policy({ groupBy: ["source"], groupWaitMs: 0, groupAlertsMax: 5 })],
        [ruleA, policy({ repeatIntervalMs: 1_000 })],
      ]),
    );
    const got = delivery(book.forRules([ruleB]));
    expect(got?.groupBy).toEqual(["source"]);
    expect(got?.groupWaitMs).toBe(0n);
    expect(got?.groupIntervalMs).toBeUndefined();
    expect(got?.groupAlertsMax).toBe(5);
    expect(delivery(book.forRules([ruleA]))?.groupBy).toEqual([]);
  });

  test("a window this process cannot parse is skipped and reported, the rule's others kept", () => {
    const book = new PolicyBook(
      new Map([[ruleA, policy({ muteWindows: ["someday 01:00-02:00", "* 00:00-24:00"] })]]),
    );
    expect(book.invalidWindows).toEqual([
      `rule ${ruleA}: "someday 01:00-02:00": weekdays "someday" must be a day name (monday...) or a range first:last`,
    ]);
    expect(mutedBy(book.forRules([ruleA]), Date.now())).toBe(ruleA);
  });
});

describe("PolicyBook.routesOf splits one client's matched rules by grouping and mute windows", () => {
  const ruleD = "00000000-0000-4000-8000-00000000000d";
  const ruleE = "00000000-0000-4000-8000-00000000000e";
  const book = new PolicyBook(
    new Map([
      [ruleA, policy({ repeatIntervalMs: 1_000 })],
      [ruleB, policy({ groupBy: ["source", "name"], groupWaitMs: 0 })],
      [ruleC, policy({ groupBy: ["name"] })],
      // The same grouping as ruleB's, its labels in another order: one route with it.
      [ruleD, policy({ groupBy: ["name", "source"], groupWaitMs: 0, sendResolved: false })],
    ]),
  );
  const client = "00000000-0000-4000-8000-0000000000ff";

  test("rules that group alike share a route; ungrouped rules, with or without settings, another", () => {
    const group = { clientId: client, ruleIds: [ruleE, ruleD, ruleC, ruleB, ruleA] };
    const routes = book.routesOf(group);
    const byRules = new Map(routes.map((r) => [[...r.match.ruleIds].sort().join(), r]));
    expect([...byRules.keys()].sort()).toEqual([[ruleA, ruleE].join(), [ruleB, ruleD].join(), ruleC].sort());
    for (const route of routes) expect(route.match.clientId).toBe(client);
    // Within a route the settings merge as before: ruleB sends resolved notifications, ruleD not.
    const pair = delivery(byRules.get([ruleB, ruleD].join())?.policy as ClientPolicy);
    expect(pair?.groupBy.toSorted()).toEqual(["name", "source"]);
    expect(pair?.skipResolved).toBe(false);
    expect(delivery(byRules.get(ruleC)?.policy as ClientPolicy)?.groupBy).toEqual(["name"]);
    // ruleE has no settings: with ruleA the route without grouping, ruleA's repeat interval its.
    const plain = delivery(byRules.get([ruleA, ruleE].join())?.policy as ClientPolicy);
    expect(plain?.groupBy).toEqual([]);
    expect(plain?.repeatIntervalMs).toBe(1_000n);
  });

  test("the routes and their order do not depend on the match order", () => {
    const one = book.routesOf({ clientId: client, ruleIds: [ruleA, ruleB, ruleC] });
    const other = book.routesOf({ clientId: client, ruleIds: [ruleC, ruleB, ruleA] });
    expect(other.map((r) => r.match.ruleIds)).toEqual(one.map((r) => r.match.ruleIds));
    expect(other.map((r) => r.policy)).toEqual(one.map((r) => r.policy));
  });

  test("a default spelt out or left absent: one route, whose settings the lowest rule id gives", () => {
    const spelt = new PolicyBook(
      new Map([
        [ruleB, policy({ groupBy: ["source"], groupWaitMs: 30_000 })],
        [ruleA, policy({ groupBy: ["source"] })],
      ]),
    );
    for (const ruleIds of [
      [ruleA, ruleB],
      [ruleB, ruleA],
    ]) {
      const routes = spelt.routesOf({ clientId: client, ruleIds });
      expect(routes).toHaveLength(1);
      expect(delivery(routes[0]?.policy as ClientPolicy)?.groupWaitMs).toBeUndefined(); // ruleA's
    }
  });

  test("rules of one route: the matcher's group itself, made once", () => {
    const group = { clientId: client, ruleIds: [ruleB, ruleD] };
    const routes = book.routesOf(group);
    expect(routes).toHaveLength(1);
    expect(routes[0]?.match).toBe(group);
    expect(book.routesOf(group)).toBe(routes);
  });

  test("each rule with mute windows is a route of its own, muted by its own windows only", () => {
    const monday10 = Date.parse("2026-12-07T10:00:00Z");
    const night = ["* 22:00-06:00"];
    const muting = new PolicyBook(
      new Map([
        [ruleA, policy({ muteWindows: ["* 08:00-12:00"] })],
        // The same windows as ruleA's: still a route of its own, so editing one never moves the other.
        [ruleB, policy({ muteWindows: ["* 08:00-12:00"] })],
        [ruleC, policy({ muteWindows: night })],
        [ruleD, policy({ groupBy: ["source"], muteWindows: night })],
      ]),
    );
    const routes = muting.routesOf({ clientId: client, ruleIds: [ruleE, ruleD, ruleC, ruleB, ruleA] });
    const byRule = new Map(routes.map((r) => [r.match.ruleIds.join(), r]));
    expect([...byRule.keys()].sort()).toEqual([ruleA, ruleB, ruleC, ruleD, ruleE]);
    const mutedAt10 = [...byRule].filter(([, r]) => mutedBy(r.policy, monday10) !== undefined);
    expect(mutedAt10.map(([rule]) => rule).sort()).toEqual([ruleA, ruleB]);
    expect(mutedBy(byRule.get(ruleB)?.policy as ClientPolicy, monday10)).toBe(ruleB);
    expect(delivery(byRule.get(ruleD)?.policy as ClientPolicy)).toMatchObject({
      groupBy: ["source"],
      muteRuleId: ruleD,
    });
    // ruleE has no settings: the plain route, never muted, nothing on the wire.
    expect(byRule.get(ruleE)?.policy).toEqual({ delivery: undefined, muting: undefined });
  });
});

describe("mutedBy", () => {
  const monday10 = Date.parse("2026-12-07T10:00:00Z");
  const monday20 = Date.parse("2026-12-07T20:00:00Z");
  const book = new PolicyBook(
    new Map([
      [ruleB, policy({ muteWindows: ["monday 09:00-17:00", "monday 19:00-21:00"] })],
      [ruleA, policy({ muteWindows: ["* 08:00-12:00"] })],
    ]),
  );

  test("muted when every matched rule is inside one of its windows: the lowest such rule id", () => {
    expect(mutedBy(book.forRules([ruleB, ruleA]), monday10)).toBe(ruleA);
    expect(mutedBy(book.forRules([ruleB]), monday20)).toBe(ruleB);
  });

  test("not muted when some matched rule is outside its windows or has none", () => {
    expect(mutedBy(book.forRules([ruleA, ruleB]), monday20)).toBeUndefined();
    expect(mutedBy(book.forRules([ruleA, ruleC]), monday10)).toBeUndefined();
  });

  test("a rule's mute windows put its id on the wire: the aggregator names its route with it", () => {
    const own = new PolicyBook(new Map([[ruleA, policy({ muteWindows: ["* 08:00-12:00"] })]]));
    expect(delivery(own.forRules([ruleA]))).toMatchObject({
      muteRuleId: ruleA,
      groupBy: [],
      skipResolved: false,
    });
  });
});

describe("checks", () => {
  test("isDefaultRulePolicy", () => {
    expect(isDefaultRulePolicy(DEFAULT_RULE_POLICY)).toBe(true);
    expect(isDefaultRulePolicy(policy({ groupWaitMs: 0 }))).toBe(false);
    expect(isDefaultRulePolicy(policy({ muteWindows: ["* 00:00-01:00"] }))).toBe(false);
  });

  test.each([
    [["source", "team"], undefined],
    [[], undefined],
    [["source", "source"], 'label "source" is listed twice'],
    [[""], "label names must be 1 to 128 characters"],
    [["a\u0000b"], "contains a NUL character"],
    [Array.from({ length: 17 }, (_, i) => `l${i}`), "at most 16 labels"],
  ])("groupByProblem(%j)", (labels, problem) => {
    const got = groupByProblem(labels);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });

  test("muteWindowsProblem names the window", () => {
    expect(muteWindowsProblem(["monday 09:00-17:00"])).toBeUndefined();
    expect(muteWindowsProblem(["monday 09:00-17:00", "funday 09:00-17:00"])).toContain("window 1: weekdays");
  });
});
