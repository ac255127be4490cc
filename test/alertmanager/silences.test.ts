/**
 * /api/v2/silences and /api/v2/silence/{id} over HTTP against real Postgres: Alertmanager's semantics,
 * tenant scoping, and what a hostile caller sends.
 */
import { describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import {
  bearer,
  newClient,
  newSharedCredential,
  type TestClient,
  useServerWithTwoClients,
} from "./helpers.ts";

const db = useTestSchema("am_silences");
const { sql } = db;
const { server, clientA, clientB } = useServerWithTwoClients(db);

interface GettableSilence {
  id: string;
  status: { state: string };
  updatedAt: string;
  matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();

function silenceBody(overrides: Record<string, unknown> = {}) {
  return {
    matchers: [{ name: "alertname", value: "DiskFull", isRegex: false, isEqual: true }],
    startsAt: new Date().toISOString(),
    endsAt: inMinutes(60),
    createdBy: "ops",
    comment: "maintenance",
    ...overrides,
  };
}

function call(
  method: string,
  path: string,
  client: TestClient | string | undefined,
  body?: unknown,
): Promise<Response> {
  const secret = typeof client === "string" ? client : client?.secret;
  return fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(secret === undefined ? {} : bearer(secret)),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function create(client: TestClient, overrides: Record<string, unknown> = {}): Promise<string> {
  const response = await call("POST", "/api/v2/silences", client, silenceBody(overrides));
  expect(response.status).toBe(200);
  const { silenceID } = (await response.json()) as { silenceID: string };
  expect(silenceID).toMatch(/^[0-9a-f-]{36}$/);
  return silenceID;
}

async function get(client: TestClient, id: string): Promise<GettableSilence> {
  const response = await call("GET", `/api/v2/silence/${id}`, client);
  expect(response.status).toBe(200);
  return (await response.json()) as GettableSilence;
}

describe("Alertmanager's silence semantics", () => {
  test("create, read back, and find it in the list", async () => {
    const before = Date.now();
    const id = await create(clientA, { startsAt: new Date(before - 3_600_000).toISOString() });
    const silence = await get(clientA, id);
    expect(silence).toMatchObject({
      id,
      status: { state: "active" },
      matchers: [{ name: "alertname", value: "DiskFull", isRegex: false, isEqual: true }],
      createdBy: "ops",
      comment: "maintenance",
    });
    // A start in the past becomes now, as in Alertmanager.
    expect(Date.parse(silence.startsAt)).toBeGreaterThanOrEqual(before);
    const list = (await (await call("GET", "/api/v2/silences", clientA)).json()) as GettableSilence[];
    expect(list.map((s) => s.id)).toContain(id);
  });

  test("a silence starting later is pending", async () => {
    const id = await create(clientA, { startsAt: inMinutes(30) });
    expect((await get(clientA, id)).status.state).toBe("pending");
  });

  test("update with the same matchers: changed in place, same id", async () => {
    const id = await create(clientA);
    const { startsAt } = await get(clientA, id);
    const endsAt = inMinutes(120);
    const updated = await create(clientA, { id, startsAt, endsAt, comment: "longer" });
    expect(updated).toBe(id);
    const silence = await get(clientA, id);
    expect(silence).toMatchObject({ comment: "longer", status: { state: "active" } });
    expect(Date.parse(silence.endsAt)).toBe(Date.parse(endsAt));
  });

  test("update with other matchers: the old one expires and a new one replaces it", async () => {
    const id = await create(clientA);
    const replacement = await create(clientA, {
      id,
      matchers: [{ name: "alertname", value: "Disk.*", isRegex: true, isEqual: true }],
    });
    expect(replacement).not.toBe(id);
    expect((await get(clientA, id)).status.state).toBe("expired");
    expect((await get(clientA, replacement)).matchers[0]).toMatchObject({ value: "Disk.*", isRegex: true });
  });

  test("DELETE expires: an active one ends now, a pending one starts and ends now", async () => {
    const active = await create(clientA);
    const pending = await create(clientA, { startsAt: inMinutes(30) });
    const before = Date.now();
    for (const id of [active, pending]) {
      const response = await call("DELETE", `/api/v2/silence/${id}`, clientA);
      expect(response.status).toBe(200);
    }
    await Bun.sleep(5); // expired once now is past endsAt
    for (const id of [active, pending]) {
      const silence = await get(clientA, id);
      expect(silence.status.state).toBe("expired");
      expect(Date.parse(silence.endsAt)).toBeGreaterThanOrEqual(before - 1);
      expect(Date.parse(silence.endsAt)).toBeLessThanOrEqual(Date.now());
    }
    expect(Date.parse((await get(clientA, pending)).startsAt)).toBe(
      Date.parse((await get(clientA, pending)).endsAt),
    );
    // Expiring it again changes nothing.
    expect((await call("DELETE", `/api/v2/silence/${active}`, clientA)).status).toBe(200);
  });

  test("filter: silences whose matchers match the filter", async () => {
    const name = `Filter${Date.now()}`;
    const id = await create(clientA, {
      matchers: [
        { name: "alertname", value: name, isRegex: false, isEqual: true },
        { name: "env", value: "prod", isRegex: false, isEqual: true },
      ],
    });
    const query = (filters: string[]) =>
      call(
        "GET",
        `/api/v2/silences?${filters.map((f) => `filter=${encodeURIComponent(f)}`).join("&")}`,
        clientA,
      );
    const ids = async (filters: string[]) =>
      ((await (await query(filters)).json()) as GettableSilence[]).map((s) => s.id);
    expect(await ids([`alertname="${name}"`])).toEqual([id]);
    expect(await ids([`alertname="${name}"`, "env=~pro.*"])).toEqual([id]);
    expect(await ids([`alertname="${name}"`, "env=staging"])).toEqual([]);
    const bad = await query(["env=~("]);
    expect(bad.status).toBe(400);
    expect(typeof (await bad.json())).toBe("string");
  });
});

describe("tenant scoping", () => {
  test("client B can neither see, change nor expire client A's silence: 404 as if none existed", async () => {
    const id = await create(clientA, { comment: "A's own" });
    expect((await call("GET", `/api/v2/silence/${id}`, clientB)).status).toBe(404);
    expect((await call("DELETE", `/api/v2/silence/${id}`, clientB)).status).toBe(404);
    const update = await call("POST", "/api/v2/silences", clientB, silenceBody({ id, comment: "hijacked" }));
    expect(update.status).toBe(404);
    expect(await update.json()).toBe("silence not found");
    const listB = (await (await call("GET", "/api/v2/silences", clientB)).json()) as GettableSilence[];
    expect(listB.map((s) => s.id)).not.toContain(id);
    const silence = await get(clientA, id);
    expect(silence).toMatchObject({ comment: "A's own", status: { state: "active" } });
  });

  test("no, a forged, or a revoked credential: 401; a shared-scope credential: 403", async () => {
    expect((await call("GET", "/api/v2/silences", undefined)).status).toBe(401);
    expect((await call("GET", "/api/v2/silences", `ik_${"A".repeat(43)}`)).status).toBe(401);
    const shared = await newSharedCredential(sql);
    const forbidden = await call("POST", "/api/v2/silences", shared, silenceBody());
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toBe("a shared-scope credential may only submit alerts");
    const revoked = await newClient(sql);
    await sql`UPDATE ingest_credentials SET revoked_at = now() WHERE id = ${revoked.credentialId}`;
    const response = await call("GET", "/api/v2/silences", revoked);
    expect(response.status).toBe(401);
    expect(typeof (await response.json())).toBe("string");
    await sql`DELETE FROM clients WHERE id = ${revoked.id}`;
  });
});

describe("hostile input: 400 (or 413, 415) with a JSON string naming the field, nothing stored", () => {
  const matcher = { name: "alertname", value: "x", isRegex: false, isEqual: true };
  const cases: [string, unknown, string][] = [
    [
      "bad regex",
      { matchers: [{ ...matcher, value: "(a+", isRegex: true }] },
      "matchers[0].value: invalid regular expression",
    ],
    [
      "NUL in a matcher value",
      { matchers: [{ ...matcher, value: "x\u0000y" }] },
      "matchers[0].value: contains a NUL character",
    ],
    ["NUL in the comment", { comment: "a\u0000" }, "comment: contains a NUL character"],
    ["lone surrogate in createdBy", { createdBy: "\ud800" }, "createdBy: contains an unpaired surrogate"],
    ["oversized comment", { comment: "x".repeat(5000) }, "comment: longer than 4096 characters"],
    [
      "oversized matcher value",
      { matchers: [{ ...matcher, value: "x".repeat(2000) }] },
      "matchers[0].value: longer than",
    ],
    [
      "too many matchers",
      { matchers: Array.from({ length: 65 }, () => matcher) },
      "matchers: at most 64 matchers",
    ],
    ["unknown field", { extra: true }, "extra: unknown field"],
    [
      "unknown matcher field",
      { matchers: [{ ...matcher, regex: true }] },
      "matchers[0].regex: unknown field",
    ],
    [
      "bad label name",
      { matchers: [{ ...matcher, name: "foo bar" }] },
      "matchers[0].name: invalid label name",
    ],
    ["no matchers", { matchers: [] }, "matchers: at least one matcher required"],
    [
      "matches everything",
      { matchers: [{ ...matcher, value: ".*", isRegex: true }] },
      "must not match the empty string",
    ],
    ["string isRegex", { matchers: [{ ...matcher, isRegex: "false" }] }, "matchers[0].isRegex"],
    ["bad time", { endsAt: "tomorrow" }, "endsAt: required: an RFC 3339 time"],
    [
      "start after end",
      { startsAt: inMinutes(10), endsAt: inMinutes(5) },
      "start time must be before end time",
    ],
    ["end in the past", { startsAt: inMinutes(-10), endsAt: inMinutes(-5) }, "end time can't be in the past"],
    ["bad id", { id: "not-a-uuid" }, "id: expected a silence UUID"],
    ["an array", [], "body: expected a silence object"],
  ];
  test.each(cases)("%s", async (_, overrides, message) => {
    const body = Array.isArray(overrides) ? overrides : silenceBody(overrides as Record<string, unknown>);
    const [{ count: before }] =
      (await sql`SELECT count(*)::int AS count FROM silences WHERE client_id = ${clientA.id}`) as [
        { count: number },
      ];
    const response = await call("POST", "/api/v2/silences", clientA, body);
    expect(response.status).toBe(400);
    const error = await response.json();
    expect(typeof error).toBe("string");
    expect(error).toContain(message);
    const [{ count: after }] =
      (await sql`SELECT count(*)::int AS count FROM silences WHERE client_id = ${clientA.id}`) as [
        { count: number },
      ];
    expect(after).toBe(before);
  });

  test("__proto__ is an unknown field, not a prototype", async () => {
    const response = await call(
      "POST",
      "/api/v2/silences",
      clientA,
      `{"__proto__": {"comment": "x"}, ${JSON.stringify(silenceBody()).slice(1)}`,
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toContain("__proto__: unknown field");
  });

  test("not JSON, not application/json, oversized", async () => {
    const notJson = await call("POST", "/api/v2/silences", clientA, "{nope");
    expect(notJson.status).toBe(400);
    expect(typeof (await notJson.json())).toBe("string");
    const plain = await fetch(`${server.url}/api/v2/silences`, {
      method: "POST",
      headers: { ...bearer(clientA.secret), "content-type": "text/plain" },
      body: JSON.stringify(silenceBody()),
    });
    expect(plain.status).toBe(415);
    expect(typeof (await plain.json())).toBe("string");
    const huge = await call(
      "POST",
      "/api/v2/silences",
      clientA,
      silenceBody({ comment: "x".repeat(300_000) }),
    );
    expect(huge.status).toBe(413);
    expect(typeof (await huge.json())).toBe("string");
  });

  test("a malformed id in the path is 400, an unknown one 404", async () => {
    const bad = await call("GET", "/api/v2/silence/..%2F..%2Fetc", clientA);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toBe("silenceID must be a UUID");
    expect((await call("DELETE", `/api/v2/silence/${crypto.randomUUID()}`, clientA)).status).toBe(404);
  });
});
