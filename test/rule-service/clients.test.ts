import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { useTestSchema } from "../../harness/postgres.ts";
import { createClient, createRule, type Service, startService } from "./helpers.ts";

const db = useTestSchema("rule_service_clients");
const service: Service = startService(db);
afterAll(() => service.stop());
const name = () => `test-${crypto.randomUUID()}`;

describe("clients", () => {
  test("create, get, replace, update, delete", async () => {
    const created = await service.call("POST", "/api/v1/clients", { body: { name: name() } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ version: 1 });
    const path = `/api/v1/clients/${created.body.id}`;

    expect((await service.call("GET", path)).body).toEqual(created.body);
    const renamed = name();
    const put = await service.call("PUT", path, { body: { name: renamed, version: 1 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: renamed, version: 2 });
    const patched = await service.call("PATCH", path, { body: { version: 2 } });
    expect(patched.body.version).toBe(3);

    expect((await service.call("DELETE", `${path}?version=1`)).status).toBe(409);
    expect((await service.call("DELETE", `${path}?version=3`)).status).toBe(204);
    expect((await service.call("GET", path)).status).toBe(404);
    expect((await service.call("DELETE", path)).status).toBe(404);
  });

  test("invalid bodies name each bad field", async () => {
    const cases: [unknown, Record<string, string>][] = [
      [{}, { name: "is required" }],
      [{ name: 5 }, { name: "must be a string" }],
      [{ name: "" }, { name: "must be at least 1 characters" }],
      [{ name: "x".repeat(201) }, { name: "must be at most 200 characters" }],
      [{ name: "a\u0000b" }, { name: "contains a NUL character at position 1" }],
      [{ name: "a", id: "x" }, { id: "unknown field" }],
    ];
    for (const [body, fields] of cases) {
      const reply = await service.call("POST", "/api/v1/clients", { body });
      expect(reply.status).toBe(400);
      expect(reply.body.error.fields).toEqual(fields);
    }
    for (const body of [[], "x", null, 1]) {
      expect((await service.call("POST", "/api/v1/clients", { body })).status).toBe(400);
    }
    const put = await service.call("PUT", `/api/v1/clients/${crypto.randomUUID()}`, {
      body: { version: "1" },
    });
    expect(put.body.error.fields).toEqual({ name: "is required", version: "must be an integer" });
  });

  test("a name counts code points, like Postgres", async () => {
    const reply = await service.call("POST", "/api/v1/clients", {
      body: { name: `${"🚨".repeat(164)}${crypto.randomUUID()}` },
    });
    expect(reply.status).toBe(201);
    await service.call("DELETE", `/api/v1/clients/${reply.body.id}`);
  });

  test("duplicate names conflict", async () => {
    const duplicate = name();
    expect((await service.call("POST", "/api/v1/clients", { body: { name: duplicate } })).status).toBe(201);
    const again = await service.call("POST", "/api/v1/clients", { body: { name: duplicate } });
    expect(again.status).toBe(409);
    expect(again.body.error.fields).toHaveProperty("name");
    const other = await createClient(service);
    const rename = await service.call("PATCH", `/api/v1/clients/${other.id}`, {
      body: { name: duplicate, version: 1 },
    });
    expect(rename.status).toBe(409);
  });

  test("stale versions conflict and report the current version", async () => {
    const client = await createClient(service);
    const path = `/api/v1/clients/${client.id}`;
    expect((await service.call("PATCH", path, { body: { name: name(), version: 1 } })).status).toBe(200);
    const stale = await service.call("PATCH", path, { body: { name: name(), version: 1 } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: "version_conflict", current_version: 2 });
  });

  test("unknown and malformed ids", async () => {
    const missing = `/api/v1/clients/${crypto.randomUUID()}`;
    expect((await service.call("GET", missing)).status).toBe(404);
    expect((await service.call("PATCH", missing, { body: { version: 1 } })).status).toBe(404);
    expect((await service.call("POST", `${missing}/api-keys`)).status).toBe(404);
    const malformed = await service.call("GET", "/api/v1/clients/not-a-uuid");
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.fields).toEqual({ id: "must be a UUID" });
  });

  test("only the admin creates, lists and deletes clients; a key reads and renames its own", async () => {
    const client = await createClient(service);
    const as = { token: client.key };
    expect((await service.call("POST", "/api/v1/clients", { ...as, body: { name: name() } })).status).toBe(
      403,
    );
    expect((await service.call("GET", "/api/v1/clients", as)).status).toBe(403);
    expect((await service.call("DELETE", `/api/v1/clients/${client.id}`, as)).status).toBe(403);
    expect((await service.call("GET", `/api/v1/clients/${client.id}`, as)).body.id).toBe(client.id);
    const renamed = await service.call("PATCH", `/api/v1/clients/${client.id}`, {
      ...as,
      body: { name: name(), version: 1 },
    });
    expect(renamed.status).toBe(200);
  });

  test("deleting a client deletes its rules and records a DELETED event for each", async () => {
    const client = await createClient(service);
    const rules = [await createRule(service, client), await createRule(service, client)];
    expect((await service.call("DELETE", `/api/v1/clients/${client.id}`)).status).toBe(204);
    const events = await service.sql<{ rule_id: string; action: string; version: number }[]>`
      SELECT rule_id, action, version FROM rule_outbox WHERE client_id = ${client.id} AND action = 'DELETED'`;
    expect(events.map((e) => e.rule_id).sort()).toEqual(rules.map((r) => r.id).sort());
    expect(events.every((e) => e.version === 2)).toBe(true);
    expect((await service.sql`SELECT 1 FROM rules WHERE client_id = ${client.id}`).length).toBe(0);
  });
});

describe("API keys", () => {
  test("the key is returned once and only its SHA-256 is stored", async () => {
    const client = await createClient(service);
    const reply = await service.call("POST", `/api/v1/clients/${client.id}/api-keys`);
    expect(reply.status).toBe(201);
    const { key, id } = reply.body;
    expect(key).toMatch(/^ak_[\w-]{43}$/);
    const [row] = await service.sql<{ key_hash: Buffer; prefix: string }[]>`
      SELECT key_hash, prefix FROM api_keys WHERE id = ${id}`;
    expect(row?.key_hash.equals(createHash("sha256").update(key).digest())).toBe(true);
    expect(key.startsWith(row?.prefix ?? "?")).toBe(true);
    expect(JSON.stringify(await service.sql`SELECT * FROM api_keys WHERE id = ${id}`)).not.toContain(key);
    expect((await service.call("GET", `/api/v1/clients/${client.id}`, { token: key })).status).toBe(200);
  });

  test("a client key may mint keys for its own client only", async () => {
    const a = await createClient(service);
    const b = await createClient(service);
    expect((await service.call("POST", `/api/v1/clients/${a.id}/api-keys`, { token: a.key })).status).toBe(
      201,
    );
    expect((await service.call("POST", `/api/v1/clients/${b.id}/api-keys`, { token: a.key })).status).toBe(
      404,
    );
  });

  test("missing, malformed, unknown and revoked credentials answer 401", async () => {
    const client = await createClient(service);
    const path = `/api/v1/clients/${client.id}`;
    for (const headers of [{}, { authorization: "Basic abc" }, { authorization: "Bearer " }] as Record<
      string,
      string
    >[]) {
      expect((await service.call("GET", path, { token: null, headers })).status).toBe(401);
    }
    expect((await service.call("GET", path, { token: "ak_unknown" })).status).toBe(401);
    expect((await service.call("GET", path, { token: `${client.key}x` })).status).toBe(401);
    await service.sql`UPDATE api_keys SET revoked_at = now() WHERE client_id = ${client.id}`;
    const revoked = await service.call("GET", path, { token: client.key });
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.code).toBe("unauthorized");
  });
});
