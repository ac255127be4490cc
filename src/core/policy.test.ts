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

  test("grouping comes from the grouping rule with the lowest id, whatever the match order", () => {
    const book = new PolicyBook(
      new Map([
        [ruleB, policy({ groupBy: ["source"], groupWaitMs: 0, groupAlertsMax: 5 })],
        [ruleC, policy({ groupBy: ["name"], groupIntervalMs: 2_000 })],
        [ruleA, policy({ repeatIntervalMs: 1_000 })],
      ]),
    );
    for (const order of [
      [ruleA, ruleB, ruleC],
      [ruleC, ruleB, ruleA],
    ]) {
      const got = delivery(book.forRules(order));
      expect(got?.groupBy).toEqual(["source"]);
      expect(got?.groupWaitMs).toBe(0n);
      expect(got?.groupIntervalMs).toBeUndefined();
      expect(got?.groupAlertsMax).toBe(5);
      expect(got?.repeatIntervalMs).toBe(1_000n);
    }
  });

  test("forClient merges once per matcher group", () => {
    const book = new PolicyBook(new Map([[ruleA, policy({ sendResolved: false })]]));
    const group = { clientId: ruleC, ruleIds: [ruleA] };
    expect(book.forClient(group)).toBe(book.forClient(group));
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

  test("mute windows alone put nothing on the wire", () => {
    expect(book.forRules([ruleA]).delivery).toBeUndefined();
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
