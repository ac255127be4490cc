import { credentialScopeSql, newSecret } from "../../adapters/ingest-credentials.ts";
import { notFound } from "./http.ts";
import { activeClause, tooManyActive } from "./secret-fields.ts";
import { type Db, type Scope, scopeClause } from "./store.ts";

/** Per client, and per shared scope. */
export const activeIngestCredentialsMax = 20;

/** A credential submits alerts under exactly one scope: a client's own, or a shared one. */
export type CredentialOwner = { clientId: string } | { scopeId: string };

export interface IngestCredential {
  id: string;
  name: string;
  /** `client:<client id>` or `shared:<scope name>`, as alerts submitted with it will carry. */
  scope: string;
  client_id: string | null;
  scope_id: string | null;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export interface CreatedIngestCredential extends Omit<IngestCredential, "revoked_at"> {
  /** Shown once; only its SHA-256 is stored. */
  secret: string;
}

export interface IngestCredentialFilter {
  clientId?: string;
  scopeId?: string;
}

const columns = `c.id, c.name, ${credentialScopeSql} AS scope, c.client_id, c.scope_id, c.prefix,
  c.created_at, c.expires_at, c.revoked_at`;

/** Run in a transaction: the owner's row lock makes the count and the insert one step. */
export async function insertIngestCredential(
  tx: Db,
  owner: CredentialOwner,
  fields: { name: string; expiresAt?: Date | null },
): Promise<CreatedIngestCredential> {
  const clientId = "clientId" in owner ? owner.clientId : null;
  const scopeId = "scopeId" in owner ? owner.scopeId : null;
  // NO KEY UPDATE serialises issuing per owner without blocking other tables' FK checks.
  const [locked] =
    clientId !== null
      ? await tx<{ scope: string }[]>`
          SELECT 'client:' || id AS scope FROM clients WHERE id = ${clientId} FOR NO KEY UPDATE`
      : await tx<{ scope: string }[]>`
          SELECT 'shared:' || name AS scope FROM shared_scopes WHERE id = ${scopeId} FOR NO KEY UPDATE`;
  if (!locked) {
    throw clientId !== null
      ? notFound("client", { client_id: "no such client" })
      : notFound("scope", { scope_id: "no such scope" });
  }
  const [{ active } = { active: 0 }] = await tx<{ active: number }[]>`
    SELECT count(*)::int AS active FROM ingest_credentials
    WHERE ${clientId !== null ? tx`client_id = ${clientId}` : tx`scope_id = ${scopeId}`} AND ${activeClause(tx)}`;
  if (active >= activeIngestCredentialsMax) {
    throw tooManyActive(
      `ingest credentials per ${clientId !== null ? "client" : "scope"}`,
      activeIngestCredentialsMax,
    );
  }
  const { secret, digest, prefix } = newSecret("ik");
  const [row] = await tx<Omit<IngestCredential, "scope" | "revoked_at">[]>`
    INSERT INTO ingest_credentials (client_id, scope_id, name, secret_hash, prefix, expires_at)
    VALUES (${clientId}, ${scopeId}, ${fields.name}, ${digest}, ${prefix}, ${fields.expiresAt ?? null})
    RETURNING id, name, client_id, scope_id, prefix, created_at, expires_at`;
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  return { ...row, scope: locked.scope, secret };
}

/** A client key sees its own client's credentials only; shared-scope ones are the admin's. */
export async function listIngestCredentials(
  db: Db,
  scope: Scope,
  filter: IngestCredentialFilter,
  afterId: string | null,
  limit: number,
): Promise<IngestCredential[]> {
  return db<IngestCredential[]>`
    SELECT ${db.unsafe(columns)}
    FROM ingest_credentials c LEFT JOIN shared_scopes s ON s.id = c.scope_id
    WHERE true
      ${scopeClause(db, scope, "c.client_id")}
      ${filter.clientId === undefined ? db`` : db`AND c.client_id = ${filter.clientId}`}
      ${filter.scopeId === undefined ? db`` : db`AND c.scope_id = ${filter.scopeId}`}
      ${afterId === null ? db`` : db`AND c.id > ${afterId}`}
    ORDER BY c.id LIMIT ${limit + 1}`;
}

/** Idempotent: revoking a revoked credential keeps its first revocation time. */
export async function revokeIngestCredential(db: Db, scope: Scope, id: string): Promise<void> {
  const [row] = await db`
    UPDATE ingest_credentials SET revoked_at = COALESCE(revoked_at, now())
    WHERE id = ${id} ${scopeClause(db, scope)} RETURNING id`;
  if (!row) throw notFound("ingest credential");
}
