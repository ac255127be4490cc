import { afterAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { createClient, createRule, type Service, startService } from "./helpers.ts";

const db = useTestSchema("rule_service_rules");
const service: Service = startService(db);
afterAll(() => service.stop());

async function outboxOf(ruleId: string) {
  return service.sql<{ action: string; version: number; client_id: string }[]>`
    SELECT action, version, client_id FROM rule_outbox WHERE rule_id = ${ruleId} ORDER BY id`;
}

describe("rules", () => {
  test("create with a key defaults client_id; the admin must name it", async () => {
    const client = await createClient(service);
    const body = { severity: "CRITICAL", source: "db", name: "*" };
    const byKey = await service.call("POST", "/api/v1/rules", { body, token: client.key });
    expect(byKey.status).toBe(201);
    expect(byKey.body).toMatchObject({ ...body, client_id: client.id, enabled: true, version: 1 });

    const missing = await service.call("POST", "/api/v1/rules", { body });
    expect(missing.status).toBe(400);
    expect(missing.body.error.fields).toEqual({ client_id: "is required" });
    const byAdmin = await service.call("POST", "/api/v1/rules", {
      body: { ...body, name: "x", client_id: client.id, enabled: false },
    });
    expect(byAdmin.status).toBe(201);
    expect(byAdmin.body.enabled).toBe(false);
  });

  test("an unknown client_id is a 404 naming client_id", async () => {
    const reply = await service.call("POST", "/api/v1/rules", {
      body: { client_id: crypto.randomUUID(), severity: "LOW", source: "a", name: "b" },
    });
    expect(reply.status).toBe(404);
    expect(reply.body.error.fields).toEqual({ client_id: "no such client" });
  });

  test("invalid bodies name each bad field", async () => {
    const client = await createClient(service);
    const cases: [unknown, string[]][] = [
      [{}, ["severity", "source", "name"]],
      [{ severity: "URGENT", source: "a", name: "b" }, ["severity"]],
      [{ severity: "LOW", source: 1, name: true, enabled: "yes" }, ["source", "name", "enabled"]],
      [{ severity: "*", source: "*", name: "*" }, ["severity", "source", "name"]],
      [{ severity: "LOW", source: "a", name: "b", client_id: "nope" }, ["client_id"]],
      [{ severity: "LOW", source: "a", name: "b", version: 3 }, ["version"]],
    ];
    for (const [body, fields] of cases) {
      const reply = await service.call("POST", "/api/v1/rules", { body, token: client.key });
      expect(reply.status).toBe(400);
      expect(Object.keys(reply.body.error.fields).sort()).toEqual(fields.sort());
    }
  });

  test("duplicates conflict", async () => {
    const client = await createClient(service);
    const rule = await createRule(service, client);
    const body = { severity: rule.severity, source: rule.source, name: rule.name };
    const again = await service.call("POST", "/api/v1/rules", { body, token: client.key });
    expect(again.status).toBe(409);
    const other = await createRule(service, client);
    const clash = await service.call("PATCH", `/api/v1/rules/${other.id}`, {
      body: { source: rule.source, version: 1 },
      token: client.key,
    });
    expect(clash.status).toBe(409);
  });

  test("get, replace, update and delete with optimistic locking", async () => {
    const client = await createClient(service);
    const rule = await createRule(service, client);
    const path = `/api/v1/rules/${rule.id}`;
    const as = { token: client.key };
    expect((await service.call("GET", path, as)).body).toEqual(rule);

    const put = await service.call("PUT", path, {
      ...as,
      body: { severity: "LOW", source: "s", name: "n", enabled: false, version: 1 },
    });
    expect(put.body).toMatchObject({ severity: "LOW", source: "s", name: "n", enabled: false, version: 2 });
    const partialPut = await service.call("PUT", path, { ...as, body: { severity: "LOW", version: 2 } });
    expect(Object.keys(partialPut.body.error.fields).sort()).toEqual(["enabled", "name", "source"]);

    const stale = await service.call("PATCH", path, { ...as, body: { enabled: true, version: 1 } });
    expect(stale.status).toBe(409);
    expect(stale.body.error.current_version).toBe(2);
    const patched = await service.call("PATCH", path, { ...as, body: { enabled: true, version: 2 } });
    expect(patched.body).toMatchObject({ enabled: true, source: "s", version: 3 });
    expect((await service.call("PATCH", path, { ...as, body: { enabled: true } })).status).toBe(400);

    expect((await service.call("DELETE", `${path}?version=2`, as)).status).toBe(409);
    expect((await service.call("DELETE", `${path}?version=3`, as)).status).toBe(204);
    expect((await service.call("GET", path, as)).status).toBe(404);
    expect((await service.call("PATCH", path, { ...as, body: { version: 3 } })).status).toBe(404);
    expect((await service.call("DELETE", path, as)).status).toBe(404);
  });

  test("an update into all wildcards is a 400 and changes nothing", async () => {
    const client = await createClient(service);
    const rule = await createRule(service, client, { severity: "*", source: "*", name: "cpu" });
    const reply = await service.call("PATCH", `/api/v1/rules/${rule.id}`, {
      body: { name: "*", version: 1 },
      token: client.key,
    });
    expect(reply.status).toBe(400);
    expect(Object.keys(reply.body.error.fields).sort()).toEqual(["name", "severity", "source"]);
    expect((await outboxOf(rule.id)).map((e) => e.action)).toEqual(["CREATED"]);
  });

  test("every change writes one outbox row with the rule's version; failed changes write none", async () => {
    const client = await createClient(service);
    const rule = await createRule(service, client);
    const path = `/api/v1/rules/${rule.id}`;
    await service.call("PATCH", path, { body: { enabled: false, version: 1 } });
    await service.call("PATCH", path, { body: { enabled: true, version: 1 } }); // stale: 409
    await service.call("PATCH", path, { body: { name: "n2", version: 2 } });
    await service.call("DELETE", path);
    expect([...(await outboxOf(rule.id))]).toEqual([
      { action: "CREATED", version: 1, client_id: client.id },
      { action: "UPDATED", version: 2, client_id: client.id },
      { action: "UPDATED", version: 3, client_id: client.id },
      { action: "DELETED", version: 4, client_id: client.id },
    ]);
  });

  test("lists filter by client_id, enabled and severity", async () => {
    const a = await createClient(service);
    const b = await createClient(service);
    const low = await createRule(service, a, { severity: "LOW" });
    const off = await createRule(service, a, { severity: "HIGH", enabled: false });
    const onB = await createRule(service, b, { severity: "LOW" });
    const ids = async (query: string, token?: string) =>
      (await service.call("GET", `/api/v1/rules?${query}`, { token })).body.items.map(
        (r: { id: string }) => r.id,
      );

    expect(await ids(`client_id=${a.id}`)).toEqual([low.id, off.id].sort());
    expect(await ids(`client_id=${a.id}&severity=LOW`)).toEqual([low.id]);
    expect(await ids(`client_id=${a.id}&enabled=false`)).toEqual([off.id]);
    expect(await ids(`client_id=${b.id}`)).toEqual([onB.id]);
    expect(await ids("", a.key)).toEqual([low.id, off.id].sort());
    expect(await ids(`client_id=${b.id}`, a.key)).toEqual([]);

    for (const query of ["enabled=yes", "severity=URGENT", "client_id=1", "sort=name", "limit=1&limit=2"]) {
      const reply = await service.call("GET", `/api/v1/rules?${query}`);
      expect(reply.status).toBe(400);
      expect(Object.keys(reply.body.error.fields)).toHaveLength(1);
    }
  });
});

describe("rule delivery settings", () => {
  const settings = {
    send_resolved: false,
    repeat_interval_ms: 3_600_000,
    group_by: ["source", "team"],
    group_wait_ms: 0,
    group_interval_ms: 60_000,
    group_alerts_max: 20,
    mute_windows: ["monday:friday 22:00-06:00 Europe/Berlin", "saturday,sunday 00:00-24:00"],
  };
  const defaults = {
    send_resolved: true,
    repeat_interval_ms: null,
    group_by: [],
    group_wait_ms: null,
    group_interval_ms: null,
    group_alerts_max: null,
    mute_windows: [],
  };

  test("a new rule has the defaults; create, patch and get carry every setting", async () => {
    const client = await createClient(service);
    const as = { token: client.key };
    const plain = await createRule(service, client);
    expect(plain).toMatchObject(defaults);
    const created = await service.call("POST", "/api/v1/rules", {
      ...as,
      body: { severity: "HIGH", source: "db", name: "*", ...settings },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject(settings);
    const patched = await service.call("PATCH", `/api/v1/rules/${plain.id}`, {
      ...as,
      body: { group_by: ["name"], mute_windows: ["* 01:00-02:00"], version: 1 },
    });
    expect(patched.body).toMatchObject({ ...defaults, group_by: ["name"], mute_windows: ["* 01:00-02:00"] });
    expect((await service.call("GET", `/api/v1/rules/${created.body.id}`, as)).body).toMatchObject(settings);
  });

  test("PUT replaces: settings it leaves out go back to the defaults", async () => {
    const client = await createClient(service);
    const created = await service.call("POST", "/api/v1/rules", {
      token: client.key,
      body: { severity: "HIGH", source: "db", name: "*", ...settings },
    });
    const put = await service.call("PUT", `/api/v1/rules/${created.body.id}`, {
      token: client.key,
      body: { severity: "HIGH", source: "db", name: "*", enabled: true, group_by: ["name"], version: 1 },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ ...defaults, group_by: ["name"], version: 2 });
  });

  test("bad settings are a 400 naming the field and the reason, and nothing is stored", async () => {
    const client = await createClient(service);
    const cases: [Record<string, unknown>, string, string][] = [
      [{ send_resolved: "no" }, "send_resolved", "must be a boolean"],
      [{ repeat_interval_ms: 10 }, "repeat_interval_ms", "must be between 1000 and 2073600000"],
      [{ repeat_interval_ms: 1.5 }, "repeat_interval_ms", "must be an integer or null"],
      [{ group_by: "source" }, "group_by", "must be a list of strings"],
      [{ group_by: ["source", "source"] }, "group_by", 'label "source" is listed twice'],
      [{ group_by: ["ok", 7] }, "group_by", "item 1 must be a string"],
      [{ group_by: ["a\u0000"] }, "group_by", "item 0 contains a NUL character"],
      [{ group_by: Array.from({ length: 17 }, (_, i) => `l${i}`) }, "group_by", "at most 16 items"],
      [{ group_wait_ms: -1 }, "group_wait_ms", "must be between 0 and 86400000"],
      [{ group_interval_ms: 999 }, "group_interval_ms", "must be between 1000"],
      [{ group_alerts_max: 0 }, "group_alerts_max", "must be between 1 and 1000"],
      [{ mute_windows: ["funday 09:00-17:00"] }, "mute_windows", 'window 0: weekdays "funday"'],
      [{ mute_windows: ["monday 09:00-17:00 Mars/Base"] }, "mute_windows", "unknown time zone"],
      [{ mute_windows: ["monday 25:00-26:00"] }, "mute_windows", "must be HH:MM-HH:MM"],
      [{ mute_windows: ["x".repeat(129)] }, "mute_windows", "item 0 must be at most 128 characters"],
    ];
    for (const [fields, field, reason] of cases) {
      const reply = await service.call("POST", "/api/v1/rules", {
        token: client.key,
        body: { severity: "LOW", source: "bad-settings", name: field, ...fields },
      });
      expect([reply.status, Object.keys(reply.body.error.fields)]).toEqual([400, [field]]);
      expect(reply.body.error.fields[field]).toContain(reason);
    }
    const [stored] = await service.sql`SELECT count(*)::int AS n FROM rules WHERE client_id = ${client.id}`;
    expect(stored?.n).toBe(0);
  });
});
