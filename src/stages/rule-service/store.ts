import type postgres from "postgres";

/** A pool or a transaction: store functions run in either. */
export type Db = postgres.ISql;

/**
 * The tenant a query is confined to: a client id for a client key, null for the admin. Every store
 * query over tenant data takes one, so isolation does not depend on each handler remembering it.
 */
export type Scope = string | null;

export function scopeClause(db: Db, scope: Scope, column = "client_id"): postgres.Fragment {
  return scope === null ? db`` : db`AND ${db(column)} = ${scope}`;
}

export function afterClause(db: Db, afterId: string | null, column = "id"): postgres.Fragment {
  return afterId === null ? db`` : db`AND ${db(column)} > ${afterId}`;
}
