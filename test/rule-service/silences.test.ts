/**
 * Silences through the rule service's API: the admin manages any client's, a client key only its
 * own; another client's silence is 404 wherever it is named, and bad input a 400 naming the field.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { createClient, type Service, startService } from "./helpers.ts";

const db = useTestSchema("rule_service_silences");
const service: Service = startService(db);
afterAll(() => service.stop());

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();
const silenceBody = (fields: object = {}) => ({
  matchers: '{severity="HIGH", source=~"db-.*"}',
  ends_at: inAnHour(),
  created_by: "ops",
  comment: "maintenance",
  ...fields,
});

describe("silences", () => {
  test("the admin creates, lists, reads and expires silences of any client", async () => {
    const a = await createClient(service);
    const b = await createClient(service);
    const created = await service.call("POST", "/api/v1/silences", {
      body: silenceBody({ client_id: a.id }),
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      client_id: a.id,
      state: "active",
      matchers: [
        { name: "severity", value: "HIGH", isRegex: false, isEqual: true },
        { name: "source", value: "db-.*", isRegex: true, isEqual: true },
      ],
    });
    const ofB = await service.call("POST", "/api/v1/silences", { body: silenceBody({ client_id: b.id }) });
    const ids = async (path: string, token?: string) =>
      (await service.call("GET", path, { token })).body.items.map((s: { id: string }) => s.id);
    expect(await ids(`/api/v1/silences?client_id=${a.id}`)).toEqual([created.body.id]);
    const all = await ids("/api/v1/silences?limit=500");
    expect(all).toContain(created.body.id);
    expect(all).toContain(ofB.body.id);
    expect((await service.call("GET", `/api/v1/silences/${ofB.body.id}`)).body.client_id).toBe(b.id);

    const expired = await service.call("DELETE", `/api/v1/silences/${created.body.id}`);
    expect(expired.status).toBe(200);
    await Bun.sleep(5);
    expect(await ids(`/api/v1/silences?client_id=${a.id}&state=expired`)).toEqual([created.body.id]);
    expect(await ids(`/api/v1/silences?client_id=${a.id}&state=active`)).toEqual([]);
    // What the evaluator's snapshot reads: only B's stays open.
    const [open] = await service.sql<{ count: number }[]>`
      SELECT count(*)::int AS count FROM silences WHERE client_id IN (${a.id}, ${b.id}) AND ends_at > now()`;
    expect(open?.count).toBe(1);
  });

  test("the admin must name the client; an unknown client is 404", async () => {
    const missing = await service.call("POST", "/api/v1/silences", { body: silenceBody() });
    expect(missing.status).toBe(400);
    expect(missing.body.error.fields).toHaveProperty("client_id");
    const unknown = await service.call("POST", "/api/v1/silences", {
      body: silenceBody({ client_id: crypto.randomUUID() }),
    });
    expect(unknown.status).toBe(404);
  });

  test("a client key sees and changes only its own client's silences", async () => {
    const a = await createClient(service);
    const b = await createClient(service);
    const own = await service.call("POST", "/api/v1/silences", { token: a.key, body: silenceBody() });
    expect(own.status).toBe(201);
    expect(own.body.client_id).toBe(a.id);
    const theirs = await service.call("POST", "/api/v1/silences", { token: b.key, body: silenceBody() });

    // Forged: creating for another client, reading, expiring or listing theirs.
    const forged = await service.call("POST", "/api/v1/silences", {
      token: a.key,
      body: silenceBody({ client_id: b.id }),
    });
    expect(forged.status).toBe(404);
    expect((await service.call("GET", `/api/v1/silences/${theirs.body.id}`, { token: a.key })).status).toBe(
      404,
    );
    expect(
      (await service.call("DELETE", `/api/v1/silences/${theirs.body.id}`, { token: a.key })).status,
    ).toBe(404);
    const listed = await service.call("GET", `/api/v1/silences?client_id=${b.id}`, { token: a.key });
    expect(listed.body.items).toEqual([]);
    const mine = await service.call("GET", "/api/v1/silences", { token: a.key });
    expect(mine.body.items.map((s: { id: string }) => s.id)).toEqual([own.body.id]);
    // B's silence is untouched.
    const [row] = await service.sql<{ open: boolean; count: number }[]>`
      SELECT ends_at > now() AS open, (SELECT count(*)::int FROM silences WHERE client_id = ${b.id}) AS count
      FROM silences WHERE id = ${theirs.body.id}`;
    expect(row).toEqual({ open: true, count: 1 });
    expect((await service.call("GET", "/api/v1/silences", { token: null })).status).toBe(401);
  });

  test("bad input: a 400 naming the field", async () => {
    const client = await createClient(service);
    const cases: [object, string][] = [
      [{ matchers: "{}" }, "matchers"],
      [{ matchers: "nope" }, "matchers"],
      [{ matchers: 'a=~".*"' }, "matchers"], // matches everything, as Alertmanager refuses
      [{ matchers: 'a=~"("' }, "matchers"],
      [{ ends_at: "tomorrow" }, "ends_at"],
      [{ ends_at: new Date(Date.now() - 1000).toISOString() }, "ends_at"],
      [{ starts_at: inAnHour(), ends_at: new Date(Date.now() + 60_000).toISOString() }, "ends_at"],
      [{ comment: "" }, "comment"],
      [{ client_id: "not-a-uuid" }, "client_id"],
      [{ extra: 1 }, "extra"],
    ];
    for (const [fields, field] of cases) {
      const reply = await service.call("POST", "/api/v1/silences", {
        token: client.key,
        body: silenceBody(fields),
      });
      expect([reply.status, field, Object.keys(reply.body.error.fields ?? {})]).toEqual([
        400,
        field,
        [field],
      ]);
    }
    for (const path of [
      "/api/v1/silences/nope",
      "/api/v1/silences?state=gone",
      "/api/v1/silences?cursor=x",
    ]) {
      expect((await service.call("GET", path, { token: client.key })).status).toBe(400);
    }
  });
});
