import { timingSafeEqual } from "node:crypto";
import { secretDigest } from "../../adapters/ingest-credentials.ts";
import type { Sql } from "../../adapters/postgres.ts";
import { HttpError } from "./http.ts";

/** Who is calling: the admin sees everything, a client key only its own client's data. */
export type Principal = { kind: "admin" } | { kind: "client"; clientId: string; keyId: string };

/** Shorter admin tokens are refused at start: the token is the one key to every tenant. */
export const adminTokenLengthMin = 32;

const unauthorized = (): HttpError => new HttpError(401, "unauthorized", "missing or invalid bearer token");

/**
 * Checks the bearer token on every request against the database, so a revoked or expired key is
 * refused from the next request on.
 */
export function createAuthenticator(sql: Sql, adminToken: string): (req: Request) => Promise<Principal> {
  // Comparing fixed-size digests keeps the comparison constant-time whatever the token lengths.
  const adminDigest = secretDigest(adminToken);
  return async (req) => {
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.get("authorization") ?? "");
    const token = match?.[1];
    if (!token) throw unauthorized();
    const digest = secretDigest(token);
    if (timingSafeEqual(digest, adminDigest)) return { kind: "admin" };
    // The lookup is by digest, so the key itself never meets a timing-dependent comparison.
    const [row] = await sql<{ id: string; client_id: string }[]>`
      SELECT id, client_id FROM api_keys
      WHERE key_hash = ${digest} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`;
    if (!row) throw unauthorized();
    return { kind: "client", clientId: row.client_id, keyId: row.id };
  };
}

export function scopeOf(principal: Principal): string | null {
  return principal.kind === "admin" ? null : principal.clientId;
}

/** The rate-limit bucket a principal spends: one per client, however many keys it holds. */
export function rateBucketOf(principal: Principal): string {
  return principal.kind === "admin" ? "admin" : `client:${principal.clientId}`;
}
