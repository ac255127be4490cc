/**
 * A rule's delivery settings (Alertmanager's route options: send_resolved, repeat_interval, group_by,
 * group_wait, group_interval, a cap on alerts per message, mute windows) and how the settings of the
 * several rules of one client that matched one alert merge into what that client gets.
 *
 * The matched rules are first split into routes (src/core/grouping.ts, deliveryRoute): the rules
 * without group_by and without mute windows form one route, the rules with equal grouping settings
 * another, and each rule with mute windows is a route of its own. Each route is its own notification
 * with its own grouping, as Alertmanager's routes each notify their receiver, so an ungrouped paging
 * rule is never held back by another rule's group_wait, and a muted rule neither mutes another rule's
 * endpoints nor lets them page during its windows. Within a route:
 *
 *   send resolved     if any of its rules sends them
 *   repeat interval   the shortest set by one of its rules (none set: the aggregator's default)
 *   grouping          the route's, as its grouping rule with the lowest id spells it
 *   muted             when the route's rule (a route with mute windows has one) is inside one of
 *                     them at the time the evaluator processes the alert (src/core/mute-window.ts says
 *                     why not its event time)
 *
 * Merges depend only on the set of rules, never on their order, so every evaluator instance decides
 * the same settings for the same rules.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { type DeliveryPolicy, DeliveryPolicySchema } from "../gen/alerting/v1/alert_pb.ts";
import { deliveryRoute, type RoutePolicy } from "./grouping.ts";
import type { ClientMatch } from "./matching/types.ts";
import { isInMuteWindow, type MuteWindow, parseMuteWindow } from "./mute-window.ts";
import { textProblem } from "./text.ts";

export interface RulePolicy {
  readonly sendResolved: boolean;
  /** null: the aggregator's REPEAT_INTERVAL_MS. */
  readonly repeatIntervalMs: number | null;
  /** Label names; empty: one message per alert. */
  readonly groupBy: readonly string[];
  /** null: the aggregator's defaults (GROUP_WAIT_MS, GROUP_INTERVAL_MS, GROUP_ALERTS_MAX). */
  readonly groupWaitMs: number | null;
  readonly groupIntervalMs: number | null;
  readonly groupAlertsMax: number | null;
  /** In src/core/mute-window.ts's text form. */
  readonly muteWindows: readonly string[];
}

export const DEFAULT_RULE_POLICY: RulePolicy = Object.freeze({
  sendResolved: true,
  repeatIntervalMs: null,
  groupBy: Object.freeze([]),
  groupWaitMs: null,
  groupIntervalMs: null,
  groupAlertsMax: null,
  muteWindows: Object.freeze([]),
});

/** Bounds the API and the migration's CHECKs share. */
export const POLICY_LIMITS = Object.freeze({
  labelsMax: 16,
  labelLengthMax: 128,
  muteWindowsMax: 16,
  repeatIntervalMs: { minimum: 1_000, maximum: 24 * 86_400_000 },
  groupWaitMs: { minimum: 0, maximum: 86_400_000 },
  groupIntervalMs: { minimum: 1_000, maximum: 86_400_000 },
  groupAlertsMax: { minimum: 1, maximum: 1_000 },
});

export function isDefaultRulePolicy(policy: RulePolicy): boolean {
  return (
    policy.sendResolved &&
    policy.repeatIntervalMs === null &&
    policy.groupBy.length === 0 &&
    policy.groupWaitMs === null &&
    policy.groupIntervalMs === null &&
    policy.groupAlertsMax === null &&
    policy.muteWindows.length === 0
  );
}

/** Why a group_by list is refused, or undefined: label names, each once, text Postgres can store. */
export function groupByProblem(labels: readonly string[]): string | undefined {
  if (labels.length > POLICY_LIMITS.labelsMax) return `at most ${POLICY_LIMITS.labelsMax} labels`;
  const seen = new Set<string>();
  for (const label of labels) {
    if (label === "" || label.length > POLICY_LIMITS.labelLengthMax)
      return `label names must be 1 to ${POLICY_LIMITS.labelLengthMax} characters`;
    const problem = textProblem(label);
    if (problem !== undefined) return `label ${JSON.stringify(label)} ${problem}`;
    if (seen.has(label)) return `label ${JSON.stringify(label)} is listed twice`;
    seen.add(label);
  }
  return undefined;
}

/**
 * What is wrong with a rule's settings, or undefined; mute windows are checked only with
 * `checkWindows` (the evaluator parses them again and skips one its time zone data does not know).
 */
export function rulePolicyProblem(policy: RulePolicy, checkWindows = true): string | undefined {
  const inRange = (value: number | null, range: { minimum: number; maximum: number }) =>
    value === null || (Number.isInteger(value) && value >= range.minimum && value <= range.maximum);
  const ranges: [string, number | null, { minimum: number; maximum: number }][] = [
    ["repeat_interval_ms", policy.repeatIntervalMs, POLICY_LIMITS.repeatIntervalMs],
    ["group_wait_ms", policy.groupWaitMs, POLICY_LIMITS.groupWaitMs],
    ["group_interval_ms", policy.groupIntervalMs, POLICY_LIMITS.groupIntervalMs],
    ["group_alerts_max", policy.groupAlertsMax, POLICY_LIMITS.groupAlertsMax],
  ];
  const outOfRange = ranges.find(([, value, range]) => !inRange(value, range));
  if (outOfRange !== undefined) return `${outOfRange[0]} out of range`;
  const groupBy = groupByProblem(policy.groupBy);
  if (groupBy !== undefined) return `group_by: ${groupBy}`;
  const windows = checkWindows ? muteWindowsProblem(policy.muteWindows) : undefined;
  return windows === undefined ? undefined : `mute_windows: ${windows}`;
}

/**
 * What is wrong with an AlertMatched.policy, as [field, reason]: the evaluator only writes valid ones,
 * but a record written straight to Kafka may carry anything, and an out-of-range interval would fail
 * the aggregator's statements for good.
 */
export function deliveryPolicyProblem(policy: DeliveryPolicy): [string, string] | undefined {
  const groupBy = groupByProblem(policy.groupBy);
  if (groupBy !== undefined) return ["policy.group_by", groupBy];
  const ranges: [string, bigint | number | undefined, { minimum: number; maximum: number }][] = [
    ["policy.repeat_interval_ms", policy.repeatIntervalMs, POLICY_LIMITS.repeatIntervalMs],
    ["policy.group_wait_ms", policy.groupWaitMs, POLICY_LIMITS.groupWaitMs],
    ["policy.group_interval_ms", policy.groupIntervalMs, POLICY_LIMITS.groupIntervalMs],
    ["policy.group_alerts_max", policy.groupAlertsMax, POLICY_LIMITS.groupAlertsMax],
  ];
  for (const [field, value, { minimum, maximum }] of ranges) {
    if (value !== undefined && (value < minimum || value > maximum))
      return [field, `not within ${minimum}..${maximum}`];
  }
  return undefined;
}

/** Why a mute window list is refused (naming the window), or undefined. */
export function muteWindowsProblem(windows: readonly string[]): string | undefined {
  if (windows.length > POLICY_LIMITS.muteWindowsMax) return `at most ${POLICY_LIMITS.muteWindowsMax} windows`;
  for (const [i, text] of windows.entries()) {
    const parsed = parseMuteWindow(text);
    if ("problem" in parsed) return `window ${i}: ${parsed.problem}`;
  }
  return undefined;
}

/** What one client gets for one set of matched rules; computed once per set and kept. */
export interface ClientPolicy {
  /** An encoded DeliveryPolicy for AlertMatched.policy; undefined when every setting is the default. */
  readonly delivery: Uint8Array | undefined;
  /**
   * Per matched rule, in rule id order, its mute windows (a route with windows has one rule);
   * undefined when some matched rule has none, so the route is never muted.
   */
  readonly muting: readonly { ruleId: string; windows: readonly MuteWindow[] }[] | undefined;
}

const unmuted: ClientPolicy = Object.freeze({ delivery: undefined, muting: undefined });

/** One route of a client's matched rules: an alerts.matched record of its own. */
export interface ClientRoute {
  /** The client and the route's rules, in match order. */
  readonly match: ClientMatch;
  readonly policy: ClientPolicy;
}

/** What of a rule names its route, as AlertMatched.policy carries it, for deliveryRoute. */
function routePolicyOf(ruleId: string, policy: RulePolicy): RoutePolicy {
  return {
    groupBy: policy.groupBy,
    groupWaitMs: policy.groupWaitMs ?? undefined,
    groupIntervalMs: policy.groupIntervalMs ?? undefined,
    groupAlertsMax: policy.groupAlertsMax ?? undefined,
    muteRuleId: policy.muteWindows.length > 0 ? ruleId : undefined,
  };
}

/** The rules with settings other than the defaults, by id; every other rule has the defaults. */
export class PolicyBook {
  readonly #byRule: ReadonlyMap<string, RulePolicy>;
  readonly #windows = new Map<string, readonly MuteWindow[]>();
  /** Mute windows that did not parse here (time zone data older than the rule service's): skipped. */
  readonly invalidWindows: string[] = [];
  /** The matcher shares its client groups across alerts, so each group's routes are made once. */
  readonly #byGroup = new WeakMap<ClientMatch, readonly ClientRoute[]>();

  constructor(byRule: ReadonlyMap<string, RulePolicy>) {
    this.#byRule = byRule;
    for (const [ruleId, policy] of byRule) {
      const windows: MuteWindow[] = [];
      for (const text of policy.muteWindows) {
        const parsed = parseMuteWindow(text);
        if ("window" in parsed) windows.push(parsed.window);
        else this.invalidWindows.push(`rule ${ruleId}: ${JSON.stringify(text)}: ${parsed.problem}`);
      }
      if (windows.length > 0) this.#windows.set(ruleId, windows);
    }
  }

  /**
   * A matcher's client group split into routes, in route order, each with its merged settings; made
   * once per group. A group whose rules share one route is its own route's match.
   */
  routesOf(group: ClientMatch): readonly ClientRoute[] {
    let routes = this.#byGroup.get(group);
    if (routes === undefined) {
      const byRoute = new Map<string, string[]>();
      for (const ruleId of group.ruleIds) {
        const policy = this.#byRule.get(ruleId);
        const route = policy === undefined ? "" : deliveryRoute(routePolicyOf(ruleId, policy));
        const ruleIds = byRoute.get(route);
        if (ruleIds === undefined) byRoute.set(route, [ruleId]);
        else ruleIds.push(ruleId);
      }
      routes =
        byRoute.size === 1
          ? [{ match: group, policy: this.forRules(group.ruleIds) }]
          : [...byRoute]
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([, ruleIds]) => ({
                match: { clientId: group.clientId, ruleIds },
                policy: this.forRules(ruleIds),
              }));
      this.#byGroup.set(group, routes);
    }
    return routes;
  }

  /** The merged settings of rules of one client that share a route. */
  forRules(ruleIds: readonly string[]): ClientPolicy {
    const policies = ruleIds.flatMap((id) => {
      const policy = this.#byRule.get(id);
      return policy === undefined ? [] : [{ id, policy }];
    });
    if (policies.length === 0) return unmuted;
    return {
      delivery: encodeDelivery(mergeDelivery(ruleIds, policies)),
      muting: this.#mutingOf(ruleIds),
    };
  }

  #mutingOf(ruleIds: readonly string[]): ClientPolicy["muting"] {
    const muting = [];
    for (const ruleId of [...ruleIds].sort()) {
      const windows = this.#windows.get(ruleId);
      if (windows === undefined) return undefined;
      muting.push({ ruleId, windows });
    }
    return muting;
  }
}

/** The rule whose mute window covers `timeMs`, when every rule of the route is muted then; else undefined. */
export function mutedBy(policy: ClientPolicy, timeMs: number): string | undefined {
  const { muting } = policy;
  if (muting === undefined) return undefined;
  for (const { windows } of muting) {
    if (!windows.some((window) => isInMuteWindow(window, timeMs))) return undefined;
  }
  return muting[0]?.ruleId;
}

interface MergedDelivery {
  sendResolved: boolean;
  repeatIntervalMs: number | null;
  grouping: RulePolicy | undefined;
  /** The route's rule when it has mute windows: it names the route (deliveryRoute). */
  muteRuleId: string | undefined;
}

function mergeDelivery(
  ruleIds: readonly string[],
  policies: readonly { id: string; policy: RulePolicy }[],
): MergedDelivery {
  // A matched rule without an entry keeps the defaults: it sends resolved notifications.
  let sendResolved = policies.length < ruleIds.length;
  let repeatIntervalMs: number | null = null;
  let grouping: { id: string; policy: RulePolicy } | undefined;
  let muteRuleId: string | undefined;
  for (const entry of policies) {
    const { policy } = entry;
    sendResolved ||= policy.sendResolved;
    if (policy.repeatIntervalMs !== null)
      repeatIntervalMs = Math.min(repeatIntervalMs ?? Number.POSITIVE_INFINITY, policy.repeatIntervalMs);
    // One route's rules group alike (routesOf), but one may spell out a default another leaves
    // absent, which the aggregator's GROUP_* may resolve otherwise: the lowest id decides, whatever
    // the match order.
    if (policy.groupBy.length > 0 && (grouping === undefined || entry.id < grouping.id)) grouping = entry;
    // One per route (routesOf); the lowest id for rules of several routes, as for the grouping.
    if (policy.muteWindows.length > 0 && (muteRuleId === undefined || entry.id < muteRuleId))
      muteRuleId = entry.id;
  }
  return { sendResolved, repeatIntervalMs, grouping: grouping?.policy, muteRuleId };
}

function encodeDelivery({
  sendResolved,
  repeatIntervalMs,
  grouping,
  muteRuleId,
}: MergedDelivery): Uint8Array | undefined {
  if (sendResolved && repeatIntervalMs === null && grouping === undefined && muteRuleId === undefined)
    return undefined;
  return toBinary(
    DeliveryPolicySchema,
    create(DeliveryPolicySchema, {
      skipResolved: !sendResolved,
      repeatIntervalMs: optionalBigInt(repeatIntervalMs),
      groupBy: [...(grouping?.groupBy ?? [])],
      groupWaitMs: optionalBigInt(grouping?.groupWaitMs ?? null),
      groupIntervalMs: optionalBigInt(grouping?.groupIntervalMs ?? null),
      groupAlertsMax: grouping?.groupAlertsMax ?? undefined,
      muteRuleId,
    }),
  );
}

const optionalBigInt = (value: number | null): bigint | undefined =>
  value === null ? undefined : BigInt(value);
