import type { Rule } from "../core/matching/types.ts";
import { parseSeverityPattern } from "../core/severity.ts";
import type { Sql } from "./postgres.ts";

export interface RuleSet {
  version: bigint;
  rules: Rule[];
}

/**
 * NOTIFY channel raised by every committed rule change (with its outbox row). The outbox relay
 * wakes on it, and the rule-updater uses it as a backstop to rule.changed.
 */
export const rulesChangedChannel = "rule_outbox";

/** Serialises builders, so the version order equals the order in which the rules were read. */
const buildLockKey = 7_414_220_552;

/**
 * Every enabled rule, with a new build version. The version is drawn under an advisory lock before
 * the rules are read (each READ COMMITTED statement sees all commits before it), so a higher version
 * always carries rules read later, even with two updaters running.
 */
export async function loadEnabledRules(sql: Sql): Promise<RuleSet> {
  return (await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${buildLockKey})`;
    const [row] = await tx<{ version: string }[]>`SELECT nextval('rules_snapshot_version') AS version`;
    const rows = await tx<
      { id: string; client_id: string; severity: string; source: string; name: string }[]
    >`
      SELECT id, client_id, severity, source, name FROM rules WHERE enabled`;
    const rules = rows.map(
      (r): Rule => ({
        ruleId: r.id,
        clientId: r.client_id,
        severity: parseSeverityPattern(r.severity),
        source: r.source,
        name: r.name,
      }),
    );
    return { version: BigInt(row?.version ?? 0), rules };
  })) as RuleSet;
}

/**
 * Moves the build sequence past `version`, for when Redis holds a snapshot from a version the
 * sequence has not reached (Postgres restored or re-created while Redis kept its data): otherwise
 * every rebuild would be refused as older until the sequence caught up.
 */
export async function advanceVersionPast(sql: Sql, version: bigint): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${buildLockKey})`;
    await tx`SELECT setval('rules_snapshot_version', GREATEST(${version.toString()}::bigint, (SELECT last_value FROM rules_snapshot_version)))`;
  });
}
