import { rulesChangedChannel } from "../../adapters/rule-source.ts";
import type { Db } from "./store.ts";

/** NOTIFY channel that wakes the relay; delivered only when the writing transaction commits. */
export const ruleOutboxChannel = rulesChangedChannel;

export interface RuleChange {
  rule_id: string;
  client_id: string;
  action: "CREATED" | "UPDATED" | "DELETED";
  version: number;
}

/**
 * Must run in the transaction that changes the rules, after their rows are locked, so that outbox ids
 * of one rule follow its commit order.
 */
export async function writeRuleChanges(tx: Db, changes: RuleChange[]): Promise<void> {
  if (changes.length === 0) return;
  await tx`INSERT INTO rule_outbox ${tx(changes, "rule_id", "client_id", "action", "version")}`;
  await tx`SELECT pg_notify(${ruleOutboxChannel}, '')`;
}
