/**
 * Ingest credentials: secrets that let a caller submit alerts under one scope, either a client's private
 * scope (`client:<uuid>`) or a shared one (`shared:<name>`). The rule service issues them; ingest verifies
 * them here on every request, so a revocation or an expiry takes effect on the next request. The secret
 * maker and digest serve the rule service's API keys as well.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Sql } from "./postgres.ts";

export interface VerifiedIngestCredential {
  credentialId: string;
  /** `client:<client uuid>` or `shared:<scope name>`. */
  scope: string;
}

/** A freshly made secret: an API key (`ak_`) or an ingest credential (`ik_`). */
export interface NewSecret {
  /** Shown to the caller once; never stored. */
  secret: string;
  /** What is stored and looked up. */
  digest: Buffer;
  /** Identifies the secret in listings. */
  prefix: string;
}

/**
 * A credential's scope, over `ingest_credentials c LEFT JOIN shared_scopes s ON s.id = c.scope_id`: the
 * one-scope constraint makes exactly one of the two names non-null.
 */
export const credentialScopeSql = "COALESCE('client:' || c.client_id, 'shared:' || s.name)";

const secretPattern = /^ik_[A-Za-z0-9_-]{43}$/;
/** Far above any header this API issues; a bound so a huge header costs no base64 decode. */
const headerLengthMax = 1024;

export const secretDigest = (secret: string): Buffer => createHash("sha256").update(secret, "utf8").digest();

/** 32 random bytes behind a tag that says what the secret opens. */
export function newSecret(tag: "ak" | "ik"): NewSecret {
  const secret = `${tag}_${randomBytes(32).toString("base64url")}`;
  return { secret, digest: secretDigest(secret), prefix: secret.slice(0, 10) };
}

/**
 * The `ik_` secret of an `Authorization` header: `Bearer ik_...`, or `Basic base64(user:ik_...)` with any
 * user name (Prometheus's alertmanagers `basic_auth` sends one). Anything else is undefined.
 */
export function ingestSecretOf(authorization: string | null | undefined): string | undefined {
  if (!authorization || authorization.length > headerLengthMax) return undefined;
  const match = /^(Bearer|Basic) +([A-Za-z0-9+/_=-]+) *$/i.exec(authorization);
  const [, scheme, token] = match ?? [];
  if (!scheme || !token) return undefined;
  let secret = token;
  if (scheme.toLowerCase() === "basic") {
    const decoded = Buffer.from(token, "base64").toString("utf8");
    // RFC 7617: the user name cannot hold a colon, so the first one ends it.
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    secret = decoded.slice(colon + 1);
  }
  return secretPattern.test(secret) ? secret : undefined;
}

/**
 * The credential an `Authorization` header carries, if it is a known one that is neither revoked nor
 * expired; undefined otherwise (answer 401). Looked up by digest, so the secret never meets a
 * timing-dependent comparison.
 */
export async function verifyIngestCredential(
  sql: Sql,
  authorization: string | null | undefined,
): Promise<VerifiedIngestCredential | undefined> {
  const secret = ingestSecretOf(authorization);
  if (secret === undefined) return undefined;
  const [row] = await sql<{ id: string; scope: string }[]>`
    SELECT c.id, ${sql.unsafe(credentialScopeSql)} AS scope
    FROM ingest_credentials c LEFT JOIN shared_scopes s ON s.id = c.scope_id
    WHERE c.secret_hash = ${secretDigest(secret)} AND c.revoked_at IS NULL
      AND (c.expires_at IS NULL OR c.expires_at > now())`;
  return row && { credentialId: row.id, scope: row.scope };
}
