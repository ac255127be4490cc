/**
 * API keys, ingest credentials, shared scopes and grants through the HTTP API, against the real
 * database: secrets shown once and stored as digests, revocation and expiry effective on the next
 * request, caps on active secrets, and what a client key may and may not do.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { useTestSchema } from "../../harness/postgres.ts";
import { verifyIngestCredential } from "../../src/adapters/ingest-credentials.ts";
import { activeApiKeysMax } from "../../src/stages/rule-service/api-keys-store.ts";
import { createRuleServiceApp } from "../../src/stages/rule-service/app.ts";
import { adminTokenLengthMin } from "../../src/stages/rule-service/auth.ts";
import { activeIngestCredentialsMax } from "../../src/stages/rule-service/ingest-credentials-store.ts";
import { createClient, type Service, startService, type TestClient } from "./helpers.ts";

const db = useTestSchema("rule_service_keys");
const service: Service = startService(db);
afterAll(() => service.stop());

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();
const inSeconds = (seconds: number): string => new Date(Date.now() + seconds * 1000).toISOString();
const scopeName = () => `test-${crypto.randomUUID()}`;
const keysPath = (client: TestClient) => `/api/v1/clients/${client.id}/api-keys`;
const credentials = "/api/v1/ingest-credentials";

/** Status of an authenticated read with `key`: 200 while it is valid, 401 once it is not. */
async function statusWith(key: string, client: TestClient): Promise<number> {
  return (await service.call("GET", `/api/v1/clients/${client.id}`, { token: key })).status;
}

describe("API keys", () => {
  test("named, with an expiry; listed without the key; only the digest stored", async () => {
    const client = await createClient(service);
    const expiresAt = inSeconds(3600);
    const created = await service.call("POST", keysPath(client), {
      token: client.key,
      body: { name: "ci deploys", expires_at: expiresAt },
    });
    expect(created.status).toBe(201);
    const { key, ...shown } = created.body;
    expect(key).toMatch(/^ak_[\w-]{43}$/);
    expect(shown).toEqual({
      id: expect.any(String),
      client_id: client.id,
      name: "ci deploys",
      prefix: key.slice(0, 10),
      created_at: expect.any(String),
      expires_at: expiresAt,
    });
    const [row] = await service.sql<
      { key_hash: Buffer }[]
    >`SELECT key_hash FROM api_keys WHERE id = ${shown.id}`;
    expect(row?.key_hash.equals(sha256(key))).toBe(true);

    const listed = await service.call("GET", keysPath(client), { token: key });
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(2);
    expect(listed.body.items).toContainEqual({ ...shown, revoked_at: null });
    expect(JSON.stringify(listed.body)).not.toContain(key);
    expect(JSON.stringify(listed.body)).not.toContain(client.key);
  });

  test("an empty body creates an unnamed key that never expires; a broken one is refused", async () => {
    const client = await createClient(service);
    for (const headers of [{}, { "content-type": "application/json" }] as Record<string, string>[]) {
      const created = await service.call("POST", keysPath(client), { headers });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name: "", expires_at: null });
    }
    const broken = await service.call("POST", keysPath(client), {
      rawBody: "{",
      headers: { "content-type": "application/json" },
    });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe("invalid_json");
    const notJson = await service.call("POST", keysPath(client), { rawBody: "name=x" });
    expect(notJson.status).toBe(415);
  });

  test("revocation takes effect on the very next request, and is idempotent", async () => {
    const client = await createClient(service);
    const other = (await service.call("POST", keysPath(client))).body;
    expect(await statusWith(other.key, client)).toBe(200);
    expect((await service.call("DELETE", `/api/v1/api-keys/${other.id}`, { token: client.key })).status).toBe(
      204,
    );
    expect(await statusWith(other.key, client)).toBe(401);
    expect(await statusWith(client.key, client)).toBe(200);
    const listed = (await service.call("GET", keysPath(client))).body.items;
    const revokedAt = listed.find((k: { id: string }) => k.id === other.id).revoked_at;
    expect(revokedAt).toEqual(expect.any(String));
    expect((await service.call("DELETE", `/api/v1/api-keys/${other.id}`)).status).toBe(204);
    const again = (await service.call("GET", keysPath(client))).body.items;
    expect(again.find((k: { id: string }) => k.id === other.id).revoked_at).toBe(revokedAt);

    // A key may revoke itself; its next request is refused.
    const [own] = await service.sql<{ id: string }[]>`
      SELECT id FROM api_keys WHERE key_hash = ${sha256(client.key)}`;
    expect((await service.call("DELETE", `/api/v1/api-keys/${own?.id}`, { token: client.key })).status).toBe(
      204,
    );
    expect(await statusWith(client.key, client)).toBe(401);
  });

  test("an expired key is refused like a revoked one", async () => {
    const client = await createClient(service);
    const soon = (await service.call("POST", keysPath(client), { body: { expires_at: inSeconds(1) } })).body;
    expect(await statusWith(soon.key, client)).toBe(200);
    await Bun.sleep(Math.max(0, Date.parse(soon.expires_at) - Date.now()) + 50);
    const refused = await service.call("GET", `/api/v1/clients/${client.id}`, { token: soon.key });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("unauthorized");
  });

  test(`at most ${activeApiKeysMax} active keys per client; revoked and expired ones do not count`, async () => {
    const client = await createClient(service);
    const ids: string[] = [];
    for (let i = 1; i < activeApiKeysMax; i++) {
      const reply = await service.call("POST", keysPath(client), { token: client.key });
      expect(reply.status).toBe(201);
      ids.push(reply.body.id);
    }
    const refused = await service.call("POST", keysPath(client), { token: client.key });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("limit_reached");
    expect((await service.call("DELETE", `/api/v1/api-keys/${ids[0]}`)).status).toBe(204);
    expect((await service.call("POST", keysPath(client))).status).toBe(201);
    expect((await service.call("POST", keysPath(client))).status).toBe(409);
    await service.sql`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ${ids[1] ?? ""}`;
    expect((await service.call("POST", keysPath(client))).status).toBe(201);

    // Concurrent creation cannot overshoot: the client's row serialises it.
    const more = await createClient(service);
    const replies = await Promise.all(
      Array.from({ length: activeApiKeysMax + 5 }, () => service.call("POST", keysPath(more))),
    );
    expect(replies.filter((r) => r.status === 201)).toHaveLength(activeApiKeysMax - 1);
    expect(replies.filter((r) => r.status === 409)).toHaveLength(6);
  });

  test("pages through a client's keys", async () => {
    const client = await createClient(service);
    for (let i = 0; i < 4; i++) await service.call("POST", keysPath(client));
    const first = (await service.call("GET", `${keysPath(client)}?limit=3`)).body;
    expect(first.items).toHaveLength(3);
    const second = (await service.call("GET", `${keysPath(client)}?limit=3&cursor=${first.next_cursor}`))
      .body;
    expect(second.items).toHaveLength(2);
    expect(second.next_cursor).toBeNull();
    expect(new Set([...first.items, ...second.items].map((k) => k.id)).size).toBe(5);
  });

  test("bad names and expiries are refused naming the field", async () => {
    const client = await createClient(service);
    const cases: [unknown, Record<string, string>][] = [
      [{ expires_at: "tomorrow" }, { expires_at: "must be an RFC 3339 date-time" }],
      [{ expires_at: "2031-02-30T00:00:00Z" }, { expires_at: "must be an RFC 3339 date-time" }],
      [{ expires_at: "2031-01-01" }, { expires_at: "must be an RFC 3339 date-time" }],
      [{ expires_at: "2031-01-01T24:00:00Z" }, { expires_at: "must be an RFC 3339 date-time" }],
      [{ expires_at: "2020-01-01T00:00:00Z" }, { expires_at: "must be in the future" }],
      [{ expires_at: 1_900_000_000 }, { expires_at: "must be a string or null" }],
      [{ name: "x".repeat(201) }, { name: "must be at most 200 characters" }],
      [{ name: "a\u0000b" }, { name: "contains a NUL character at position 1" }],
      [{ client_id: client.id }, { client_id: "unknown field" }],
    ];
    for (const [body, fields] of cases) {
      const reply = await service.call("POST", keysPath(client), { body });
      expect({ body, status: reply.status, fields: reply.body.error.fields }).toEqual({
        body,
        status: 400,
        fields,
      });
    }
    const offset = await service.call("POST", keysPath(client), {
      body: { expires_at: "2031-01-01T10:00:00.5+02:00" },
    });
    expect(offset.status).toBe(201);
    expect(offset.body.expires_at).toBe("2031-01-01T08:00:00.500Z");
  });
});

describe("ingest credentials", () => {
  test("a client key issues one for its own client; the secret works once issued and not after revocation", async () => {
    const client = await createClient(service);
    const created = await service.call("POST", credentials, {
      token: client.key,
      body: { name: "prometheus" },
    });
    expect(created.status).toBe(201);
    const { secret, ...shown } = created.body;
    expect(secret).toMatch(/^ik_[\w-]{43}$/);
    expect(shown).toEqual({
      id: expect.any(String),
      name: "prometheus",
      scope: `client:${client.id}`,
      client_id: client.id,
      scope_id: null,
      prefix: secret.slice(0, 10),
      created_at: expect.any(String),
      expires_at: null,
    });
    const [row] = await service.sql<{ secret_hash: Buffer }[]>`
      SELECT secret_hash FROM ingest_credentials WHERE id = ${shown.id}`;
    expect(row?.secret_hash.equals(sha256(secret))).toBe(true);

    expect(await verifyIngestCredential(service.sql, `Bearer ${secret}`)).toEqual({
      credentialId: shown.id,
      scope: `client:${client.id}`,
    });
    const listed = await service.call("GET", credentials, { token: client.key });
    expect(listed.body.items).toEqual([{ ...shown, revoked_at: null }]);
    expect(JSON.stringify(listed.body)).not.toContain(secret);

    expect((await service.call("DELETE", `${credentials}/${shown.id}`, { token: client.key })).status).toBe(
      204,
    );
    expect(await verifyIngestCredential(service.sql, `Bearer ${secret}`)).toBeUndefined();
    const revoked = (await service.call("GET", `${credentials}?client_id=${client.id}`)).body.items;
    expect(revoked[0].revoked_at).toEqual(expect.any(String));
  });

  test("the admin issues them for any client or shared scope; an expired one is refused", async () => {
    const client = await createClient(service);
    const scope = (await service.call("POST", "/api/v1/scopes", { body: { name: scopeName() } })).body;
    const forClient = await service.call("POST", credentials, { body: { name: "c", client_id: client.id } });
    expect(forClient.body.scope).toBe(`client:${client.id}`);
    const forScope = await service.call("POST", credentials, {
      body: { name: "s", scope_id: scope.id, expires_at: inSeconds(1) },
    });
    expect(forScope.status).toBe(201);
    expect(forScope.body).toMatchObject({
      scope: `shared:${scope.name}`,
      client_id: null,
      scope_id: scope.id,
    });
    const header = `Basic ${Buffer.from(`prometheus:${forScope.body.secret}`).toString("base64")}`;
    expect((await verifyIngestCredential(service.sql, header))?.scope).toBe(`shared:${scope.name}`);

    const byScope = (await service.call("GET", `${credentials}?scope_id=${scope.id}`)).body.items;
    expect(byScope.map((c: { id: string }) => c.id)).toEqual([forScope.body.id]);
    // Shared-scope credentials are the admin's: the client does not see them.
    const granted = await service.call("POST", `/api/v1/scopes/${scope.id}/grants`, {
      body: { client_id: client.id },
    });
    expect(granted.status).toBe(201);
    expect(
      (await service.call("GET", `${credentials}?scope_id=${scope.id}`, { token: client.key })).body.items,
    ).toEqual([]);
    expect(
      (await service.call("DELETE", `${credentials}/${forScope.body.id}`, { token: client.key })).status,
    ).toBe(404);

    await Bun.sleep(Math.max(0, Date.parse(forScope.body.expires_at) - Date.now()) + 50);
    expect(await verifyIngestCredential(service.sql, header)).toBeUndefined();
  });

  test("owner rules: one of client_id or scope_id; a client key cannot name another client or a scope", async () => {
    const a = await createClient(service);
    const b = await createClient(service);
    const scope = (await service.call("POST", "/api/v1/scopes", { body: { name: scopeName() } })).body;
    const cases: [string | undefined, object, number, Record<string, string> | undefined][] = [
      [undefined, { name: "x" }, 400, { client_id: "is required (or scope_id)" }],
      [
        undefined,
        { name: "x", client_id: a.id, scope_id: scope.id },
        400,
        {
          client_id: "give client_id or scope_id, not both",
          scope_id: "give client_id or scope_id, not both",
        },
      ],
      [undefined, { name: "x", client_id: crypto.randomUUID() }, 404, { client_id: "no such client" }],
      [undefined, { name: "x", scope_id: crypto.randomUUID() }, 404, { scope_id: "no such scope" }],
      [undefined, { client_id: a.id }, 400, { name: "is required" }],
      [undefined, { name: "", client_id: a.id }, 400, { name: "must be at least 1 characters" }],
      [a.key, { name: "x", client_id: b.id }, 404, { client_id: "no such client" }],
      [a.key, { name: "x", scope_id: scope.id }, 403, undefined],
      [a.key, { name: "x", scope_id: crypto.randomUUID() }, 403, undefined],
      [
        a.key,
        { name: "x", expires_at: "2020-01-01T00:00:00Z" },
        400,
        { expires_at: "must be in the future" },
      ],
    ];
    for (const [token, body, status, fields] of cases) {
      const reply = await service.call("POST", credentials, { token, body });
      expect({ body, status: reply.status, fields: reply.body.error.fields }).toEqual({
        body,
        status,
        fields,
      });
    }
    expect(
      (await service.sql`SELECT 1 FROM ingest_credentials WHERE client_id IN (${a.id}, ${b.id})`).length,
    ).toBe(0);
  });

  test(`at most ${activeIngestCredentialsMax} active per client`, async () => {
    const client = await createClient(service);
    const issue = () => service.call("POST", credentials, { token: client.key, body: { name: "x" } });
    const replies = await Promise.all(Array.from({ length: activeIngestCredentialsMax + 3 }, issue));
    expect(replies.filter((r) => r.status === 201)).toHaveLength(activeIngestCredentialsMax);
    const refused = replies.filter((r) => r.status === 409);
    expect(refused).toHaveLength(3);
    expect(refused[0]?.body.error.code).toBe("limit_reached");
    const first = replies.find((r) => r.status === 201)?.body.id;
    expect((await service.call("DELETE", `${credentials}/${first}`, { token: client.key })).status).toBe(204);
    expect((await issue()).status).toBe(201);
  });

  test("unknown credentials answer 404 on revocation", async () => {
    expect((await service.call("DELETE", `${credentials}/${crypto.randomUUID()}`)).status).toBe(404);
  });
});

describe("shared scopes and grants", () => {
  test("the admin creates, grants, takes back and deletes; a client lists the scopes granted to it", async () => {
    const a = await createClient(service);
    const b = await createClient(service);
    const name = scopeName();
    const created = await service.call("POST", "/api/v1/scopes", { body: { name } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.any(String), name, created_at: expect.any(String) });
    const scope = created.body;
    const grants = `/api/v1/scopes/${scope.id}/grants`;

    const granted = await service.call("POST", grants, { body: { client_id: a.id } });
    expect(granted.status).toBe(201);
    expect(granted.body).toEqual({ scope_id: scope.id, client_id: a.id, created_at: expect.any(String) });
    const again = await service.call("POST", grants, { body: { client_id: a.id } });
    expect(again.status).toBe(409);
    expect(again.body.error.fields).toEqual({ client_id: "already granted this scope" });

    expect((await service.call("GET", "/api/v1/scopes", { token: a.key })).body.items).toEqual([scope]);
    expect((await service.call("GET", "/api/v1/scopes", { token: b.key })).body.items).toEqual([]);
    expect((await service.call("GET", `/api/v1/scopes?client_id=${a.id}`)).body.items).toEqual([scope]);
    expect((await service.call("GET", `/api/v1/scopes?client_id=${b.id}`)).body.items).toEqual([]);

    expect((await service.call("DELETE", `${grants}?client_id=${a.id}`)).status).toBe(204);
    expect((await service.call("DELETE", `${grants}?client_id=${a.id}`)).status).toBe(404);
    expect((await service.call("GET", "/api/v1/scopes", { token: a.key })).body.items).toEqual([]);

    const credential = (await service.call("POST", credentials, { body: { name: "x", scope_id: scope.id } }))
      .body;
    expect((await service.call("POST", grants, { body: { client_id: b.id } })).status).toBe(201);
    expect((await service.call("DELETE", `/api/v1/scopes/${scope.id}`)).status).toBe(204);
    expect((await service.call("DELETE", `/api/v1/scopes/${scope.id}`)).status).toBe(404);
    // Its grants and credentials went with it.
    expect((await service.call("GET", "/api/v1/scopes", { token: b.key })).body.items).toEqual([]);
    expect(await verifyIngestCredential(service.sql, `Bearer ${credential.secret}`)).toBeUndefined();
  });

  test("bad names, duplicates and unknown ids", async () => {
    for (const name of ["Upper", "-dash-first", "a b", "x".repeat(64), "a/b", "é"]) {
      const reply = await service.call("POST", "/api/v1/scopes", { body: { name } });
      expect({ name, status: reply.status, fields: Object.keys(reply.body.error.fields) }).toEqual({
        name,
        status: 400,
        fields: ["name"],
      });
    }
    const name = scopeName();
    expect((await service.call("POST", "/api/v1/scopes", { body: { name } })).status).toBe(201);
    const duplicate = await service.call("POST", "/api/v1/scopes", { body: { name } });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.fields).toEqual({ name: "a scope with this name exists" });

    const scope = (await service.call("POST", "/api/v1/scopes", { body: { name: scopeName() } })).body;
    const client = await createClient(service);
    const unknownScope = `/api/v1/scopes/${crypto.randomUUID()}/grants`;
    expect((await service.call("POST", unknownScope, { body: { client_id: client.id } })).status).toBe(404);
    const unknownClient = await service.call("POST", `/api/v1/scopes/${scope.id}/grants`, {
      body: { client_id: crypto.randomUUID() },
    });
    expect(unknownClient.status).toBe(404);
    expect(unknownClient.body.error.fields).toEqual({ client_id: "no such client" });
    const noClient = await service.call("DELETE", `/api/v1/scopes/${scope.id}/grants`);
    expect(noClient.status).toBe(400);
    expect(noClient.body.error.fields).toEqual({ client_id: "is required" });
  });
});

describe("the admin token", () => {
  test(`must be at least ${adminTokenLengthMin} characters, in process and for the stage`, async () => {
    const short = "x".repeat(adminTokenLengthMin - 1);
    expect(() => createRuleServiceApp({ sql: service.sql, adminToken: short })).toThrow(
      `at least ${adminTokenLengthMin} characters`,
    );
    expect(() => createRuleServiceApp({ sql: service.sql, adminToken: `${short}x` })).not.toThrow();
    const stage = Bun.spawn([process.execPath, "src/stages/rule-service/main.ts"], {
      cwd: new URL("../..", import.meta.url).pathname,
      env: { ...process.env, ADMIN_TOKEN: short, HTTP_PORT: "0" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stdout, stderr] = await Promise.all([
      stage.exited,
      new Response(stage.stdout).text(),
      new Response(stage.stderr).text(),
    ]);
    expect(code).toBe(2);
    expect(stdout + stderr).toContain(`ADMIN_TOKEN: is ${short.length} characters`);
  });
});
