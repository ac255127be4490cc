import { rulesChangedChannel } from "../../adapters/rule-source.ts";
import { type FieldErrors, HttpError, notFound } from "./http.ts";
import { afterClause, type Db, type Scope } from "./store.ts";

/** As the shared_scopes check constraint has it. */
export const scopeNamePattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export interface SharedScope {
  id: string;
  name: string;
  created_at: Date;
}

export interface ScopeGrant {
  scope_id: string;
  client_id: string;
  created_at: Date;
}

/**
 * Grants are part of the rules snapshot, and the rule-updater rebuilds it when this channel is
 * notified, as after a rule change. Delivered only if the transaction commits.
 */
async function announceSnapshotChange(tx: Db): Promise<void> {
  await tx`SELECT pg_notify(${rulesChangedChannel}, '')`;
}

const conflict = (fields: FieldErrors): HttpError =>
  new HttpError(409, "conflict", "a resource with these fields already exists", { fields });

export async function insertScope(db: Db, name: string): Promise<SharedScope> {
  const [row] = await db<SharedScope[]>`
    INSERT INTO shared_scopes (name) VALUES (${name}) ON CONFLICT (name) DO NOTHING RETURNING *`;
  if (!row) throw conflict({ name: "a scope with this name exists" });
  return row;
}

/** A client key sees the scopes granted to its client; the admin all, or those granted to `clientId`. */
export async function listScopes(
  db: Db,
  scope: Scope,
  clientId: string | undefined,
  afterId: string | null,
  limit: number,
): Promise<SharedScope[]> {
  const grantedTo = (id: string) => db`AND id IN (SELECT scope_id FROM scope_grants WHERE client_id = ${id})`;
  return db<SharedScope[]>`
    SELECT * FROM shared_scopes WHERE true
      ${scope === null ? db`` : grantedTo(scope)}
      ${clientId === undefined ? db`` : grantedTo(clientId)}
      ${afterClause(db, afterId)}
    ORDER BY id LIMIT ${limit + 1}`;
}

/** Its grants and credentials go with it. */
export async function deleteScope(tx: Db, id: string): Promise<void> {
  const [row] = await tx`DELETE FROM shared_scopes WHERE id = ${id} RETURNING id`;
  if (!row) throw notFound("scope");
  await announceSnapshotChange(tx);
}

export async function insertGrant(tx: Db, scopeId: string, clientId: string): Promise<ScopeGrant> {
  // Locked so that a concurrent delete of either cannot turn the insert into an FK error.
  const [scope] = await tx`SELECT id FROM shared_scopes WHERE id = ${scopeId} FOR KEY SHARE`;
  if (!scope) throw notFound("scope");
  const [client] = await tx`SELECT id FROM clients WHERE id = ${clientId} FOR KEY SHARE`;
  if (!client) throw notFound("client", { client_id: "no such client" });
  const [row] = await tx<ScopeGrant[]>`
    INSERT INTO scope_grants (scope_id, client_id) VALUES (${scopeId}, ${clientId})
    ON CONFLICT DO NOTHING RETURNING *`;
  if (!row) throw conflict({ client_id: "already granted this scope" });
  await announceSnapshotChange(tx);
  return row;
}

export async function deleteGrant(tx: Db, scopeId: string, clientId: string): Promise<void> {
  const [row] = await tx`
    DELETE FROM scope_grants WHERE scope_id = ${scopeId} AND client_id = ${clientId} RETURNING scope_id`;
  if (!row) throw notFound("grant");
  await announceSnapshotChange(tx);
}

/** For a client's deletion, whose grants cascade: the snapshot must drop them too. */
export async function deleteClientGrants(tx: Db, clientId: string): Promise<void> {
  const rows = await tx`DELETE FROM scope_grants WHERE client_id = ${clientId} RETURNING scope_id`;
  if (rows.length > 0) await announceSnapshotChange(tx);
}
