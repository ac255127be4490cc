/**
 * Grouping at delivery (docs/design/alert-model.md, "Grouping"): which group a notification belongs
 * to, and the settings its group runs with. Pure: the aggregator stores the result with the row, the
 * sender sends each group's due rows as one message per endpoint.
 *
 * group key = first 128 bits of SHA-256, as 32 lowercase hex characters, over the length-prefixed
 * (uint32 big-endian byte length, then UTF-8) fields, in order: the client id, the resolved settings
 * (group_wait_ms, group_interval_ms, group_alerts_max as decimal text), the number of group_by label
 * names (uint32), then per label name in sorted order its name and its value. Equal settings and
 * equal values make one group per client, whichever rules matched; the sender routes each alert of a
 * group only to the endpoints of its own rules.
 */
import { assert } from "./assert.ts";

/** What a rule asks for (AlertMatched.policy's grouping fields); absent settings take the defaults. */
export interface GroupingPolicy {
  groupBy: readonly string[];
  groupWaitMs?: number | bigint | undefined;
  groupIntervalMs?: number | bigint | undefined;
  groupAlertsMax?: number | undefined;
}

export interface GroupSettings {
  /** Sorted and deduplicated label names. */
  groupBy: readonly string[];
  groupWaitMs: number;
  groupIntervalMs: number;
  groupAlertsMax: number;
}

export type GroupDefaults = Omit<GroupSettings, "groupBy">;

/** Alertmanager's defaults: group_wait 30 s, group_interval 5 min, max 100 alerts listed (ours). */
export const alertmanagerGroupDefaults: GroupDefaults = {
  groupWaitMs: 30_000,
  groupIntervalMs: 5 * 60_000,
  groupAlertsMax: 100,
};

/**
 * The settings a row's group runs with; undefined without group_by (one message per alert). A wait of
 * 0 makes a new group's first window due at once (the sender's scheduler takes it on its next pass,
 * within SCHEDULER_INTERVAL_MS); an interval or cap of 0 (which the rule API refuses)
 * takes the default like an absent one.
 */
export function resolveGrouping(
  policy: GroupingPolicy | undefined,
  defaults: GroupDefaults,
): GroupSettings | undefined {
  if (policy === undefined || policy.groupBy.length === 0) return undefined;
  const positiveOr = (value: number | bigint | undefined, fallback: number) => {
    const n = Number(value ?? 0);
    return n > 0 ? n : fallback;
  };
  return {
    groupBy: [...new Set(policy.groupBy)].sort(),
    groupWaitMs:
      policy.groupWaitMs === undefined ? defaults.groupWaitMs : Math.max(0, Number(policy.groupWaitMs)),
    groupIntervalMs: positiveOr(policy.groupIntervalMs, defaults.groupIntervalMs),
    groupAlertsMax: positiveOr(policy.groupAlertsMax, defaults.groupAlertsMax),
  };
}

/** The fields of an alert a label name can name. */
export interface LabelledAlert {
  severity: string;
  source: string;
  name: string;
  context: Readonly<Record<string, unknown>>;
}

/**
 * The value of one label: severity, source and name (or Alertmanager's alertname) are the alert's
 * own fields, any other name a context key; a missing key is the empty value, like Alertmanager.
 */
export function labelValue(alert: LabelledAlert, label: string): string {
  switch (label) {
    case "severity":
      return alert.severity;
    case "source":
      return alert.source;
    case "name":
    case "alertname":
      return alert.name;
    default: {
      const value = alert.context[label];
      if (value === undefined || value === null) return "";
      return typeof value === "string" ? value : JSON.stringify(value);
    }
  }
}

/**
 * The group's labels, named as the alerts' labels are (`alertLabels`): `name` is `alertname` there, so
 * that, as in Alertmanager, a group's labels are among its alerts' common labels.
 */
export function groupLabels(alert: LabelledAlert, groupBy: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const label of groupBy) labels[labelName(label)] = labelValue(alert, label);
  return labels;
}

/** The name a group_by label has among the group's labels. */
const labelName = (label: string): string => (label === "name" ? "alertname" : label);

const encoder = new TextEncoder();

/** Feeds each field to `hasher` as its uint32 big-endian byte length, then its UTF-8. */
function writeFields(hasher: Bun.CryptoHasher, fields: readonly string[]): void {
  const length = new Uint8Array(4);
  for (const field of fields) {
    const bytes = encoder.encode(field);
    new DataView(length.buffer).setUint32(0, bytes.length);
    hasher.update(length);
    hasher.update(bytes);
  }
}

const first128BitsHex = (hasher: Bun.CryptoHasher): string => hasher.digest("hex").slice(0, 32);

export function groupKey(clientId: string, settings: GroupSettings, labels: Record<string, string>): string {
  assert(settings.groupBy.length > 0, "a group key needs group_by");
  const hasher = new Bun.CryptoHasher("sha256");
  writeFields(hasher, [
    clientId,
    String(settings.groupWaitMs),
    String(settings.groupIntervalMs),
    String(settings.groupAlertsMax),
  ]);
  const count = new Uint8Array(4);
  new DataView(count.buffer).setUint32(0, settings.groupBy.length);
  hasher.update(count);
  writeFields(
    hasher,
    settings.groupBy.flatMap((label) => [label, labels[labelName(label)] ?? ""]),
  );
  return first128BitsHex(hasher);
}

/** What a route is made of: a rule's grouping (AlertMatched.policy's fields) and, for a rule with mute windows, its id. */
export interface RoutePolicy extends GroupingPolicy {
  muteRuleId?: string;
}

/**
 * The first of a muted rule's route's three fields; a grouped route has at least four, and the
 * length-prefixed fields read back unambiguously, so the two never hash the same bytes.
 */
const mutedRuleField = "muted_rule";

/**
 * Which of a client's routes a notification belongs to: "" for its rules without group_by and
 * without mute windows, else one value per grouping, and one per rule with mute windows. The rules of
 * a client that matched an alert are split by it: each route gets its own notification, delivered to
 * its own rules' endpoints with its own grouping, as Alertmanager's routes each notify their
 * receiver. A rule with mute windows is a route of its own, named by its id, so that muting it
 * neither mutes another rule's endpoints nor lets them page during its windows; editing its windows
 * keeps its route (as Alertmanager's mute_time_intervals are not part of a group's identity), only
 * giving a rule its first windows or taking its last away moves it. An absent setting counts as
 * Alertmanager's default (not the aggregator's GROUP_*, so changing those moves no row to another
 * route), so a rule that spells a default out groups with one that leaves it absent. 32 hex
 * characters: the first 128 bits of SHA-256 over length-prefixed fields, as in the key: the sorted,
 * deduplicated group_by names, then group_wait_ms, group_interval_ms and group_alerts_max as decimal
 * text; for a rule with mute windows, over "muted_rule", that grouping's route ("" when
 * ungrouped) and the rule id.
 */
export function deliveryRoute(policy: RoutePolicy | undefined): string {
  const grouped = groupingRoute(policy);
  const ruleId = policy?.muteRuleId ?? "";
  if (ruleId === "") return grouped;
  const hasher = new Bun.CryptoHasher("sha256");
  writeFields(hasher, [mutedRuleField, grouped, ruleId]);
  return first128BitsHex(hasher);
}

function groupingRoute(policy: GroupingPolicy | undefined): string {
  if (policy === undefined || policy.groupBy.length === 0) return "";
  const defaults = alertmanagerGroupDefaults;
  const hasher = new Bun.CryptoHasher("sha256");
  writeFields(hasher, [
    ...[...new Set(policy.groupBy)].sort(),
    String(policy.groupWaitMs ?? defaults.groupWaitMs),
    String(policy.groupIntervalMs ?? defaults.groupIntervalMs),
    String(policy.groupAlertsMax ?? defaults.groupAlertsMax),
  ]);
  return first128BitsHex(hasher);
}

/**
 * The Idempotency-Key of one window of a group: the same on every retry and after any crash.
 * `incarnation` tells apart a group recreated after retention deleted it, whose windows count from 0
 * again (notification_groups.incarnation, its creation time in ms); null for a group created before
 * migration 000022, which keeps the key it had, so a window in flight across the upgrade keeps it.
 */
export function groupIdempotencyKey(key: string, windowNo: number, incarnation: number | null): string {
  assert(
    Number.isSafeInteger(windowNo) && windowNo >= 0,
    `a group window number is a non-negative integer, got ${windowNo}`,
  );
  if (incarnation === null) return `group-${key}-${windowNo}`;
  assert(
    Number.isSafeInteger(incarnation) && incarnation >= 0,
    `a group incarnation is null or a non-negative integer, got ${incarnation}`,
  );
  return `group-${key}-${incarnation}-${windowNo}`;
}
