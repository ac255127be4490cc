import type { SsrfGuard } from "../../channels/ssrf.ts";
import { assertSecretAllowed, type EndpointType, normalizeEndpointValue } from "./endpoint-value.ts";
import { notFound, versionConflict } from "./http.ts";
import { afterClause, type Db, type Scope, scopeClause } from "./store.ts";

interface EndpointRow {
  id: string;
  rule_id: string;
  client_id: string;
  type: EndpointType;
  value: string;
  secret: string | null;
  enabled: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** What the API shows: the secret is write-only, only its presence is visible. */
export type Endpoint = Omit<EndpointRow, "secret"> & { has_secret: boolean };

export interface EndpointFields {
  type: EndpointType;
  value: string;
  secret: string | null;
  enabled: boolean;
}

function toEndpoint({ secret, ...row }: EndpointRow): Endpoint {
  return { ...row, has_secret: secret !== null };
}

/** Inserts under the rule only if the caller can see it; returns undefined when it cannot. */
export async function insertEndpoint(
  db: Db,
  scope: Scope,
  ruleId: string,
  fields: EndpointFields,
  guard: SsrfGuard,
): Promise<Endpoint | undefined> {
  assertSecretAllowed(fields.type, fields.secret);
  const value = normalizeEndpointValue(fields.type, fields.value, guard);
  const [row] = await db<EndpointRow[]>`
    INSERT INTO endpoints (rule_id, client_id, type, value, secret, enabled)
    SELECT id, client_id, ${fields.type}, ${value}, ${fields.secret}, ${fields.enabled}
    FROM rules WHERE id = ${ruleId} ${scopeClause(db, scope)}
    RETURNING *`;
  return row && toEndpoint(row);
}

export async function findEndpoint(db: Db, scope: Scope, id: string): Promise<Endpoint | undefined> {
  const [row] = await db<EndpointRow[]>`SELECT * FROM endpoints WHERE id = ${id} ${scopeClause(db, scope)}`;
  return row && toEndpoint(row);
}

export async function listEndpoints(
  db: Db,
  scope: Scope,
  ruleId: string,
  afterId: string | null,
  limit: number,
): Promise<Endpoint[]> {
  const rows = await db<EndpointRow[]>`
    SELECT * FROM endpoints WHERE rule_id = ${ruleId} ${scopeClause(db, scope)} ${afterClause(db, afterId)}
    ORDER BY id LIMIT ${limit + 1}`;
  return rows.map(toEndpoint);
}

export async function updateEndpoint(
  tx: Db,
  scope: Scope,
  id: string,
  expectedVersion: number,
  changes: Partial<EndpointFields>,
  guard: SsrfGuard,
): Promise<Endpoint> {
  const [current] = await tx<EndpointRow[]>`
    SELECT * FROM endpoints WHERE id = ${id} ${scopeClause(tx, scope)} FOR UPDATE`;
  if (!current) throw notFound("endpoint");
  if (current.version !== expectedVersion) throw versionConflict(current.version);
  const merged = { ...current, ...changes };
  assertSecretAllowed(merged.type, changes.secret);
  const value = normalizeEndpointValue(merged.type, merged.value, guard);
  // A secret only means something to a webhook; changing the type away drops it.
  const secret = merged.type === "webhook" ? merged.secret : null;
  const [row] = await tx<EndpointRow[]>`
    UPDATE endpoints SET type = ${merged.type}, value = ${value}, secret = ${secret},
      enabled = ${merged.enabled}, version = version + 1, updated_at = now()
    WHERE id = ${id} RETURNING *`;
  if (!row) throw new Error("UPDATE of a locked row returned no row");
  return toEndpoint(row);
}

export async function deleteEndpoint(
  db: Db,
  scope: Scope,
  id: string,
  expectedVersion: number | undefined,
): Promise<void> {
  const deleted = await db`
    DELETE FROM endpoints WHERE id = ${id} ${scopeClause(db, scope)}
      ${expectedVersion === undefined ? db`` : db`AND version = ${expectedVersion}`}
    RETURNING id`;
  if (deleted.length > 0) return;
  const current = await findEndpoint(db, scope, id);
  if (!current) throw notFound("endpoint");
  throw versionConflict(current.version);
}
