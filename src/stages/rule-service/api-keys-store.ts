import { newSecret } from "../../adapters/ingest-credentials.ts";
import { notFound } from "./http.ts";
import { activeClause, tooManyActive } from "./secret-fields.ts";
import { afterClause, type Db, type Scope, scopeClause } from "./store.ts";

/** A bound on what one client can mint, so minting keys is no way around anything per key. */
export const activeApiKeysMax = 20;

export interface ApiKey {
  id: string;
  client_id: string;
  name: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export interface CreatedApiKey extends Omit<ApiKey, "revoked_at"> {
  /** Shown once; only its SHA-256 is stored. */
  key: string;
}

export interface NewApiKey {
  name?: string;
  expiresAt?: Date | null;
}

const columns = "id, client_id, name, prefix, created_at, expires_at, revoked_at";

/** Run in a transaction: the client's row lock makes the count and the insert one step. */
export async function insertApiKey(tx: Db, clientId: string, fields: NewApiKey = {}): Promise<CreatedApiKey> {
  // NO KEY UPDATE serialises key creation per client without blocking the FK checks of rule inserts.
  const [client] = await tx`SELECT id FROM clients WHERE id = ${clientId} FOR NO KEY UPDATE`;
  if (!client) throw notFound("client");
  const [{ active } = { active: 0 }] = await tx<{ active: number }[]>`
    SELECT count(*)::int AS active FROM api_keys WHERE client_id = ${clientId} AND ${activeClause(tx)}`;
  if (active >= activeApiKeysMax) throw tooManyActive("API keys per client", activeApiKeysMax);
  const { secret, digest, prefix } = newSecret("ak");
  const [row] = await tx<ApiKey[]>`
    INSERT INTO api_keys (client_id, key_hash, prefix, name, expires_at)
    VALUES (${clientId}, ${digest}, ${prefix}, ${fields.name ?? ""}, ${fields.expiresAt ?? null})
    RETURNING ${tx.unsafe(columns)}`;
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  const { revoked_at: _, ...created } = row;
  return { ...created, key: secret };
}

/** Revoked and expired keys included, ordered by id. */
export async function listApiKeys(
  db: Db,
  clientId: string,
  afterId: string | null,
  limit: number,
): Promise<ApiKey[]> {
  return db<ApiKey[]>`
    SELECT ${db.unsafe(columns)} FROM api_keys WHERE client_id = ${clientId} ${afterClause(db, afterId)}
    ORDER BY id LIMIT ${limit + 1}`;
}

/** Idempotent: revoking a revoked key keeps its first revocation time. */
export async function revokeApiKey(db: Db, scope: Scope, id: string): Promise<void> {
  const [row] = await db`
    UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
    WHERE id = ${id} ${scopeClause(db, scope)} RETURNING id`;
  if (!row) throw notFound("API key");
}
