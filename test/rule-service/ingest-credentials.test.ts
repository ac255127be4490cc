/** verifyIngestCredential against real rows: the header forms ingest accepts and every way to be refused. */
import { describe, expect, test } from "bun:test";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { ingestSecretOf, newSecret, verifyIngestCredential } from "../../src/adapters/ingest-credentials.ts";
import { insertClient } from "../../src/stages/rule-service/clients-store.ts";

const { sql } = useTestSchema("ingest_credentials");

interface Issued {
  id: string;
  secret: string;
}

async function issue(
  owner: { clientId: string } | { scopeId: string },
  columns: { expiresAt?: Date; revokedAt?: Date } = {},
): Promise<Issued> {
  const { secret, digest, prefix } = newSecret("ik");
  const clientId = "clientId" in owner ? owner.clientId : null;
  const scopeId = "scopeId" in owner ? owner.scopeId : null;
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO ingest_credentials (client_id, scope_id, name, secret_hash, prefix, expires_at, revoked_at)
    VALUES (${clientId}, ${scopeId}, 'test', ${digest}, ${prefix}, ${columns.expiresAt ?? null},
            ${columns.revokedAt ?? null})
    RETURNING id`;
  if (!row) throw new Error("insert credential");
  return { id: row.id, secret };
}

const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("verifyIngestCredential", () => {
  test("a client credential, as a bearer token or as basic auth with any user name", async () => {
    const client = await insertClient(sql, uniqueName("ingest-cred"));
    const { id, secret } = await issue({ clientId: client.id });
    const expected = { credentialId: id, scope: `client:${client.id}` };
    for (const header of [
      `Bearer ${secret}`,
      `bearer ${secret}`,
      basic("prometheus", secret),
      basic("", secret),
      `basic ${Buffer.from(`x:${secret}`).toString("base64")}`,
    ]) {
      expect(await verifyIngestCredential(sql, header)).toEqual(expected);
    }
  });

  test("a shared-scope credential carries the scope's name", async () => {
    const name = uniqueName("shared").toLowerCase();
    const [scope] = await sql<{ id: string }[]>`
      INSERT INTO shared_scopes (name) VALUES (${name}) RETURNING id`;
    if (!scope) throw new Error("insert scope");
    const { id, secret } = await issue({ scopeId: scope.id });
    expect(await verifyIngestCredential(sql, `Bearer ${secret}`)).toEqual({
      credentialId: id,
      scope: `shared:${name}`,
    });
  });

  test("revoked and expired credentials are refused; a future expiry is not", async () => {
    const client = await insertClient(sql, uniqueName("ingest-cred"));
    const past = new Date(Date.now() - 1000);
    const future = new Date(Date.now() + 3_600_000);
    const revoked = await issue({ clientId: client.id }, { revokedAt: past });
    const expired = await issue({ clientId: client.id }, { expiresAt: past });
    const live = await issue({ clientId: client.id }, { expiresAt: future });
    expect(await verifyIngestCredential(sql, `Bearer ${revoked.secret}`)).toBeUndefined();
    expect(await verifyIngestCredential(sql, `Bearer ${expired.secret}`)).toBeUndefined();
    expect((await verifyIngestCredential(sql, `Bearer ${live.secret}`))?.credentialId).toBe(live.id);

    // Revocation applies to the very next lookup: nothing is cached.
    await sql`UPDATE ingest_credentials SET revoked_at = now() WHERE id = ${live.id}`;
    expect(await verifyIngestCredential(sql, `Bearer ${live.secret}`)).toBeUndefined();
  });

  test("a deleted client's credentials go with it", async () => {
    const client = await insertClient(sql, uniqueName("ingest-cred"));
    const { secret } = await issue({ clientId: client.id });
    await sql`DELETE FROM clients WHERE id = ${client.id}`;
    expect(await verifyIngestCredential(sql, `Bearer ${secret}`)).toBeUndefined();
  });

  test("forged, malformed and oversized headers are refused without a match", async () => {
    const client = await insertClient(sql, uniqueName("ingest-cred"));
    const { secret } = await issue({ clientId: client.id });
    const unknown = newSecret("ik").secret;
    const refused = [
      undefined,
      null,
      "",
      "Bearer",
      "Bearer ",
      secret,
      `Token ${secret}`,
      `Bearer ${secret}x`,
      `Bearer ${secret.slice(0, -1)}`,
      `Bearer ${secret}\u0000`,
      `Bearer ak_${secret.slice(3)}`,
      `Bearer ${secret} ${secret}`,
      basic("user", `${secret}\u0000`),
      `Basic ${Buffer.from(secret).toString("base64")}`,
      `Basic ${secret}`,
      `Basic not-base64!`,
      `Bearer ${"A".repeat(100_000)}`,
      `Basic ${Buffer.from(`${"u".repeat(5000)}:${secret}`).toString("base64")}`,
    ];
    for (const header of refused) {
      expect(ingestSecretOf(header)).toBeUndefined();
      expect(await verifyIngestCredential(sql, header)).toBeUndefined();
    }
    // Well-formed but never issued: parsed, then not found.
    for (const header of [`Bearer ${unknown}`, basic("user", unknown)]) {
      expect(ingestSecretOf(header)).toBe(unknown);
      expect(await verifyIngestCredential(sql, header)).toBeUndefined();
    }
  });
});
