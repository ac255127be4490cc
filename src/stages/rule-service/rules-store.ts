import type { RulePolicyColumns } from "../../adapters/rule-source.ts";
import { badRequest, notFound, versionConflict } from "./http.ts";
import { writeRuleChanges } from "./outbox.ts";
import { afterClause, type Db, type Scope, scopeClause } from "./store.ts";

export const severities = ["LOW", "MEDIUM", "HIGH", "CRITICAL", "*"] as const;
export type RuleSeverity = (typeof severities)[number];

export interface Rule extends RulePolicyColumns {
  id: string;
  client_id: string;
  severity: RuleSeverity;
  source: string;
  name: string;
  enabled: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** The columns a caller sets; the delivery settings left out keep their column defaults on insert. */
const ruleFieldNames = [
  "severity",
  "source",
  "name",
  "enabled",
  "send_resolved",
  "repeat_interval_ms",
  "group_by",
  "group_wait_ms",
  "group_interval_ms",
  "group_alerts_max",
  "mute_windows",
] as const;
type DeliveryFieldName = (typeof ruleFieldNames)[number] &
  `${"send" | "repeat" | "group" | "mute"}_${string}`;

export type RuleFields = Pick<Rule, Exclude<(typeof ruleFieldNames)[number], DeliveryFieldName>> &
  Partial<Pick<Rule, DeliveryFieldName>>;

export interface RuleFilter {
  clientId?: string;
  enabled?: boolean;
  severity?: RuleSeverity;
}

/** Mirrors the rules_not_all_wildcards constraint so the caller learns which fields to fix. */
function assertNotAllWildcards(rule: Pick<Rule, "severity" | "source" | "name">): void {
  if (rule.severity === "*" && rule.source === "*" && rule.name === "*") {
    const reason = "severity, source and name cannot all be '*'";
    throw badRequest("a rule must match something", { severity: reason, source: reason, name: reason });
  }
}

export async function insertRule(tx: Db, clientId: string, fields: RuleFields): Promise<Rule> {
  assertNotAllWildcards(fields);
  const [rule] = await tx<Rule[]>`
    INSERT INTO rules ${tx({ client_id: clientId, ...fields }, "client_id", ...ruleFieldNames.filter((name) => fields[name] !== undefined))}
    RETURNING *`;
  if (!rule) throw new Error("INSERT ... RETURNING returned no row");
  await writeRuleChanges(tx, [{ rule_id: rule.id, client_id: clientId, action: "CREATED", version: 1 }]);
  return rule;
}

export async function findRule(db: Db, scope: Scope, id: string): Promise<Rule | undefined> {
  const [rule] = await db<Rule[]>`SELECT * FROM rules WHERE id = ${id} ${scopeClause(db, scope)}`;
  return rule;
}

export async function listRules(
  db: Db,
  scope: Scope,
  filter: RuleFilter,
  afterId: string | null,
  limit: number,
): Promise<Rule[]> {
  return db<Rule[]>`
    SELECT * FROM rules WHERE true
      ${scopeClause(db, scope)}
      ${filter.clientId === undefined ? db`` : db`AND client_id = ${filter.clientId}`}
      ${filter.enabled === undefined ? db`` : db`AND enabled = ${filter.enabled}`}
      ${filter.severity === undefined ? db`` : db`AND severity = ${filter.severity}`}
      ${afterClause(db, afterId)}
    ORDER BY id LIMIT ${limit + 1}`;
}

/** Locks the rule and checks the version the caller read; 404 and 409 come from here. */
async function lockRule(tx: Db, scope: Scope, id: string, expectedVersion?: number): Promise<Rule> {
  const [rule] = await tx<Rule[]>`SELECT * FROM rules WHERE id = ${id} ${scopeClause(tx, scope)} FOR UPDATE`;
  if (!rule) throw notFound("rule");
  if (expectedVersion !== undefined && rule.version !== expectedVersion) throw versionConflict(rule.version);
  return rule;
}

export async function updateRule(
  tx: Db,
  scope: Scope,
  id: string,
  expectedVersion: number,
  changes: Partial<RuleFields>,
): Promise<Rule> {
  const merged = { ...(await lockRule(tx, scope, id, expectedVersion)), ...changes };
  assertNotAllWildcards(merged);
  const [rule] = await tx<Rule[]>`
    UPDATE rules SET ${tx(merged, ...ruleFieldNames)}, version = version + 1, updated_at = now()
    WHERE id = ${id} RETURNING *`;
  if (!rule) throw new Error("UPDATE of a locked row returned no row");
  await writeRuleChanges(tx, [
    { rule_id: id, client_id: rule.client_id, action: "UPDATED", version: rule.version },
  ]);
  return rule;
}

/** The DELETED event carries version + 1 so that "newest version wins" consumers apply it last. */
export async function deleteRule(tx: Db, scope: Scope, id: string, expectedVersion?: number): Promise<void> {
  const rule = await lockRule(tx, scope, id, expectedVersion);
  await tx`DELETE FROM rules WHERE id = ${id}`;
  await writeRuleChanges(tx, [
    { rule_id: id, client_id: rule.client_id, action: "DELETED", version: rule.version + 1 },
  ]);
}
