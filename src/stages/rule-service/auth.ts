import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Sql } from "../../adapters/postgres.ts";
import { HttpError } from "./http.ts";

/** Who is calling: the admin sees everything, a client key only its own client's data. */
export type Principal = { kind: "admin" } | { kind: "client"; clientId: string; keyId: string };

const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

const unauthorized = (): HttpError => new HttpError(401, "unauthorized", "missing or invalid bearer token");

export function createAuthenticator(sql: Sql, adminToken: string): (req: Request) => Promise<Principal> {
  // Comparing fixed-size digests keeps the comparison constant-time whatever the token lengths.
  const adminDigest = sha256(adminToken);
  return async (req) => {
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.get("authorization") ?? "");
    const token = match?.[1];
    if (!token) throw unauthorized();
    const digest = sha256(token);
    if (timingSafeEqual(digest, adminDigest)) return { kind: "admin" };
    // The lookup is by digest, so the key itself never meets a timing-dependent comparison.
    const [row] = await sql<{ id: string; client_id: string; key_hash: Buffer }[]>`
      SELECT id, client_id, key_hash FROM api_keys WHERE key_hash = ${digest} AND revoked_at IS NULL`;
    if (!row || !timingSafeEqual(row.key_hash, digest)) throw unauthorized();
    return { kind: "client", clientId: row.client_id, keyId: row.id };
  };
}

export interface CreatedApiKey {
  id: string;
  client_id: string;
  prefix: string;
  /** Shown once; only its SHA-256 is stored. */
  key: string;
  created_at: Date;
}

export async function createApiKey(sql: Sql, clientId: string): Promise<CreatedApiKey> {
  const key = `ak_${randomBytes(32).toString("base64url")}`;
  const prefix = key.slice(0, 10);
  const [row] = await sql<{ id: string; created_at: Date }[]>`
    INSERT INTO api_keys (client_id, key_hash, prefix) VALUES (${clientId}, ${sha256(key)}, ${prefix})
    RETURNING id, created_at`;
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  return { id: row.id, client_id: clientId, prefix, key, created_at: row.created_at };
}

export function scopeOf(principal: Principal): string | null {
  return principal.kind === "admin" ? null : principal.clientId;
}
