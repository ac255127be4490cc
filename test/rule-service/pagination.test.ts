import { afterAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { createClient, createRule, insertNotification, type Service, startService } from "./helpers.ts";

const db = useTestSchema("rule_service_pagination");
const service: Service = startService(db);
afterAll(() => service.stop());

/** Follows next_cursor to the end; returns every item id in the order served. */
async function walk(path: string, token?: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const url: string = cursor === null ? path : `${path}${separator}cursor=${encodeURIComponent(cursor)}`;
    const reply = await service.call("GET", url, { token });
    expect(reply.status).toBe(200);
    ids.push(...reply.body.items.map((item: { id: string }) => item.id));
    cursor = reply.body.next_cursor;
  } while (cursor !== null);
  return ids;
}

describe("pagination", () => {
  test("walking 120 rules in pages of 7 loses and repeats nothing", async () => {
    const client = await createClient(service);
    const created = await Promise.all(Array.from({ length: 120 }, () => createRule(service, client)));
    const expected = created.map((r) => r.id).sort();
    expect(await walk("/api/v1/rules?limit=7", client.key)).toEqual(expected);
    expect(await walk(`/api/v1/rules?limit=500&client_id=${client.id}`)).toEqual(expected);
    const page = await service.call("GET", "/api/v1/rules", { token: client.key });
    expect(page.body.items).toHaveLength(50);
  });

  test("walking 110 endpoints and 105 notifications", async () => {
    const client = await createClient(service);
    const rule = await createRule(service, client);
    const endpointIds: string[] = [];
    for (let i = 0; i < 110; i++) {
      const reply = await service.call("POST", `/api/v1/rules/${rule.id}/endpoints`, {
        token: client.key,
        body: { type: "email", value: `u${i}@example.com` },
      });
      endpointIds.push(reply.body.id);
    }
    expect(await walk(`/api/v1/rules/${rule.id}/endpoints?limit=9`, client.key)).toEqual(endpointIds.sort());

    const notificationIds: string[] = [];
    for (let i = 0; i < 105; i++) notificationIds.push((await insertNotification(service.sql, client.id)).id);
    expect(await walk("/api/v1/notifications?limit=10", client.key)).toEqual(notificationIds);
  });

  test("the client list is ordered by id and contains each client once", async () => {
    const mine = [await createClient(service), await createClient(service), await createClient(service)];
    const all = await walk("/api/v1/clients?limit=500");
    expect([...all].sort()).toEqual(all);
    expect(new Set(all).size).toBe(all.length);
    for (const client of mine) expect(all).toContain(client.id);
  });

  test("an empty list is [] with no cursor", async () => {
    const client = await createClient(service);
    const reply = await service.call("GET", "/api/v1/rules", { token: client.key });
    expect(reply.body).toEqual({ items: [], next_cursor: null });
  });

  test("bad limits and cursors are 400", async () => {
    for (const query of [
      "limit=0",
      "limit=501",
      "limit=abc",
      "limit=1.5",
      "limit=",
      "cursor=abc",
      "cursor=",
    ]) {
      const reply = await service.call("GET", `/api/v1/rules?${query}`);
      expect({ query, status: reply.status }).toEqual({ query, status: 400 });
      expect(Object.keys(reply.body.error.fields)).toEqual([query.split("=")[0] ?? ""]);
    }
    const notificationCursor = Buffer.from(JSON.stringify({ after: crypto.randomUUID() })).toString(
      "base64url",
    );
    const reply = await service.call("GET", `/api/v1/notifications?cursor=${notificationCursor}`);
    expect(reply.status).toBe(400);
    expect((await service.call("GET", "/api/v1/rules?limit=500")).status).toBe(200);
  });
});
