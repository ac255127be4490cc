import { rulePolicyProblem } from "../core/policy.ts";
import {
  parseUuid,
  type RulePolicyEntry,
  type Snapshot,
  SnapshotBuilder,
  UUID_BYTES,
} from "../core/snapshot.ts";
import type { Sql, TransactionSql } from "./postgres.ts";
import { RuleCopyParser, ruleCopyColumns } from "./rules-copy.ts";
import { loadOpenSilences } from "./silence-store.ts";

/**
 * NOTIFY channel raised by every committed rule change (with its outbox row) and every change of shared
 * scopes and their grants. The outbox relay wakes on it, and the rule-updater rebuilds on it (a backstop to
 * rule.changed for rules; the only prompt signal for grants, which have no event).
 */
export const rulesChangedChannel = "rule_outbox";

/** Serialises builders, so the version order equals the order in which the rules were read. */
const buildLockKey = 7_414_220_552;

/**
 * Every enabled rule and every shared-scope grant as a snapshot with a new build version. The version is
 * drawn under an advisory lock before anything is read (each READ COMMITTED statement sees all commits before
 * it), so a higher version always carries rules and grants read later, even with two updaters running.
 */
export async function loadRulesSnapshot(
  sql: Sql,
  onInvalidPolicy: InvalidPolicyHandler = () => {},
): Promise<Snapshot> {
  return (await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${buildLockKey})`;
    const [row] = await tx<{ version: string }[]>`SELECT nextval('rules_snapshot_version') AS version`;
    const builder = await copyEnabledRules(tx);
    await addGrants(tx, builder);
    const silences = await loadOpenSilences(tx);
    return builder.build(
      BigInt(row?.version ?? 0),
      BigInt(Date.now()),
      silences,
      await loadRulePolicies(tx, onInvalidPolicy),
    );
  })) as Snapshot;
}

/**
 * Streams the enabled rules of `table` (the rules table's columns; the bench reads its own copy) into a
 * new SnapshotBuilder.
 */
export async function copyEnabledRules(tx: TransactionSql, table = "rules"): Promise<SnapshotBuilder> {
  const builder = new SnapshotBuilder();
  const parser = new RuleCopyParser(builder);
  const stream = await tx`
    COPY (SELECT ${tx.unsafe(ruleCopyColumns)} FROM ${tx(table)} WHERE enabled) TO STDOUT (FORMAT binary)`.readable();
  await new Promise<void>((resolve, reject) => {
    let failure: unknown;
    stream.on("data", (chunk: Uint8Array) => {
      if (failure !== undefined) return;
      try {
        parser.push(chunk);
      } catch (error) {
        // Keep draining: a destroyed stream would leave postgres.js's socket paused (below).
        failure = error;
      }
    });
    stream.on("error", reject);
    stream.on("end", () => {
      // postgres.js 3.4.9 pauses its socket when a push fills the stream's buffer and resumes it only
      // in _read, which Readable never calls after the end: when the last rows and the end of the COPY
      // come in one socket read before they are consumed, the connection stays paused for good and the
      // transaction's next statement hangs (porsager/postgres#1016). One more _read resumes it.
      stream._read(0);
      try {
        if (failure !== undefined) throw failure;
        parser.end();
        resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
  return builder;
}

/**
 * Adds every shared-scope grant to `builder` (after the rules: a grant to a client without enabled rules is
 * left out). Grants are one row per (shared scope, client), few next to rules: a plain SELECT.
 */
export async function addGrants(tx: TransactionSql, builder: SnapshotBuilder): Promise<void> {
  const grants = await tx<{ name: string; client_id: string }[]>`
    SELECT s.name, g.client_id FROM scope_grants g JOIN shared_scopes s ON s.id = g.scope_id
    ORDER BY s.name, g.client_id`;
  const id = new Uint8Array(UUID_BYTES);
  for (const grant of grants) {
    if (!parseUuid(grant.client_id, id, 0)) throw new Error(`scope_grants: client_id ${grant.client_id}`);
    builder.addGrant(grant.name, id, 0);
  }
}

/** The columns of a rule's delivery settings, as postgres.js returns them (src/core/policy.ts's meaning). */
export interface RulePolicyColumns {
  send_resolved: boolean;
  repeat_interval_ms: number | null;
  group_by: string[];
  group_wait_ms: number | null;
  group_interval_ms: number | null;
  group_alerts_max: number | null;
  mute_windows: string[];
}

/** A rule that sets none of them: the stages' defaults. */
export const defaultPolicyColumns: Readonly<RulePolicyColumns> = Object.freeze({
  send_resolved: true,
  repeat_interval_ms: null,
  group_by: [],
  group_wait_ms: null,
  group_interval_ms: null,
  group_alerts_max: null,
  mute_windows: [],
});

/** Told of a rule whose stored settings are refused (written around the API): it gets the defaults. */
export type InvalidPolicyHandler = (ruleId: string, problem: string) => void;

/**
 * The settings of every enabled rule that does not keep the defaults (few: a plain SELECT). A rule
 * whose settings are invalid keeps the defaults and is reported: one bad row must not make every
 * snapshot refused, which would stop rule changes for all clients.
 */
export async function loadRulePolicies(
  tx: TransactionSql,
  onInvalid: InvalidPolicyHandler,
): Promise<RulePolicyEntry[]> {
  const rows = await tx<(RulePolicyColumns & { id: string })[]>`
    SELECT id, send_resolved, repeat_interval_ms, group_by, group_wait_ms, group_interval_ms,
      group_alerts_max, mute_windows
    FROM rules
    WHERE enabled AND (NOT send_resolved OR repeat_interval_ms IS NOT NULL OR cardinality(group_by) > 0
      OR group_wait_ms IS NOT NULL OR group_interval_ms IS NOT NULL OR group_alerts_max IS NOT NULL
      OR cardinality(mute_windows) > 0)
    ORDER BY id`;
  const entries = rows.map((row) => ({
    ruleId: row.id,
    policy: {
      sendResolved: row.send_resolved,
      repeatIntervalMs: row.repeat_interval_ms,
      groupBy: row.group_by,
      groupWaitMs: row.group_wait_ms,
      groupIntervalMs: row.group_interval_ms,
      groupAlertsMax: row.group_alerts_max,
      muteWindows: row.mute_windows,
    },
  }));
  return entries.filter(({ ruleId, policy }) => {
    const problem = rulePolicyProblem(policy);
    if (problem !== undefined) onInvalid(ruleId, problem);
    return problem === undefined;
  });
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
