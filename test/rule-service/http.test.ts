import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { rawRequest } from "../../harness/raw-http.ts";
import { adminToken, createClient, createRule, type Service, startService } from "./helpers.ts";
import { type RuleServiceProcess, startRuleServiceProcess } from "./process.ts";

const db = useTestSchema("rule_service_http");
const service: Service = startService(db);
afterAll(() => service.stop());

const limitBytes = 64 * 1024;

describe("HTTP protocol errors", () => {
  test("413 for bodies over the limit, declared or actual", async () => {
    const big = JSON.stringify({ name: "x".repeat(limitBytes) });
    const declared = await service.call("POST", "/api/v1/clients", { body: JSON.parse(big) });
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe("payload_too_large");

    // A chunked body has no Content-Length; the size read is what counts.
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192));
        controller.close();
      },
    });
    const chunked = await fetch(new URL("/api/v1/clients", service.url), {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: stream,
    });
    expect(chunked.status).toBe(413);

    const justUnder = JSON.stringify({ name: "x".repeat(limitBytes - 20) });
    expect(
      (await service.call("POST", "/api/v1/clients", { rawBody: justUnder, headers: json })).status,
    ).toBe(400);
  });

  test("415 for anything but application/json", async () => {
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", ""]) {
      const reply = await service.call("POST", "/api/v1/clients", {
        rawBody: '{"name":"x"}',
        headers: { "content-type": contentType },
      });
      expect({ contentType, status: reply.status }).toEqual({ contentType, status: 415 });
    }
    const withCharset = await service.call("POST", "/api/v1/clients", {
      body: { name: `test-${crypto.randomUUID()}` },
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expect(withCharset.status).toBe(201);
  });

  test("405 with Allow for a wrong method; 404 for an unknown route", async () => {
    const id = crypto.randomUUID();
    const cases: [string, string, string][] = [
      ["DELETE", "/api/v1/rules", "POST, GET"],
      ["PUT", `/api/v1/endpoints/${id}`, "GET, PATCH, DELETE"],
      ["POST", `/api/v1/notifications/1`, "GET"],
      ["PATCH", "/openapi.json", "GET"],
    ];
    for (const [method, path, allow] of cases) {
      const reply = await service.call(method, path, { token: null });
      expect(reply.status).toBe(405);
      expect(reply.headers.get("allow")).toBe(allow);
    }
    const unknown = await service.call("GET", "/api/v1/nope");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
  });

  test("malformed JSON, invalid UTF-8 and deep nesting are 400", async () => {
    const bodies: BodyInit[] = [
      "{",
      "",
      '{"name": "x",}',
      new Uint8Array([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      `${"[".repeat(30_000)}${"]".repeat(30_000)}`,
      `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`,
    ];
    for (const rawBody of bodies) {
      const reply = await service.call("POST", "/api/v1/clients", { rawBody, headers: json });
      expect(reply.status).toBe(400);
    }
  });
});

const json = { "content-type": "application/json" };

describe("text Postgres cannot store (raw bodies: JSON.parse turns the escapes into NUL and lone surrogates)", () => {
  test("every string field is a 400 naming it, and nothing is written", async () => {
    const client = await createClient(service);
    const rule = await createRule(service, client);
    const endpoints = `/api/v1/rules/${rule.id}/endpoints`;
    const clientName = `test-${crypto.randomUUID()}`;
    const cases: [string, string, string, Record<string, string>][] = [
      [
        "POST",
        "/api/v1/clients",
        `{"name": "${clientName}\\u0000"}`,
        { name: "contains a NUL character at position 41" },
      ],
      [
        "POST",
        "/api/v1/rules",
        '{"severity": "HIGH", "source": "db\\ud800", "name": "\\u0000cpu"}',
        {
          source: "contains an unpaired surrogate at position 2",
          name: "contains a NUL character at position 0",
        },
      ],
      [
        "PUT",
        `/api/v1/rules/${rule.id}`,
        '{"severity": "H\\u0000", "source": "db", "name": "x\\udfff", "enabled": true, "version": 1}',
        {
          severity: "contains a NUL character at position 1",
          name: "contains an unpaired surrogate at position 1",
        },
      ],
      [
        "PATCH",
        `/api/v1/rules/${rule.id}`,
        '{"source": "\\udc00\\ud800", "version": 1}',
        { source: "contains an unpaired surrogate at position 0" },
      ],
      [
        "POST",
        endpoints,
        '{"type": "webhook", "value": "https://example.com/\\u0000", "secret": "s3cret-s3cret-s3cret\\ud83d"}',
        {
          value: "contains a NUL character at position 20",
          secret: "contains an unpaired surrogate at position 20",
        },
      ],
    ];
    for (const [method, path, rawBody, fields] of cases) {
      const token = path === "/api/v1/clients" ? adminToken : client.key;
      const reply = await service.call(method, path, { rawBody, headers: json, token });
      expect({ path, status: reply.status, fields: reply.body.error?.fields }).toEqual({
        path,
        status: 400,
        fields,
      });
    }
    const query = await service.call("GET", "/api/v1/rules?cursor=%00", { token: client.key });
    expect(query.body.error.fields).toEqual({ cursor: "contains a NUL character at position 0" });
    expect(await service.sql`SELECT 1 FROM clients WHERE name LIKE ${`${clientName}%`}`).toHaveLength(0);
    expect(await service.sql`SELECT 1 FROM endpoints WHERE rule_id = ${rule.id}`).toHaveLength(0);
    expect((await service.call("GET", `/api/v1/rules/${rule.id}`, { token: client.key })).body).toEqual(rule);
  });
});

describe("__proto__, constructor and prototype are unknown fields like any other", () => {
  // Raw bodies: JSON.parse makes "__proto__" an ordinary own property, which our own clients'
  // JSON.stringify of an object literal would never send.
  for (const key of ["__proto__", "constructor", "prototype"]) {
    test(`${key} in a body or a query is a 400 and changes nothing`, async () => {
      const name = `test-${crypto.randomUUID()}`;
      const created = await service.call("POST", "/api/v1/clients", {
        rawBody: `{"name": "${name}", "${key}": {"isAdmin": true}}`,
        headers: json,
      });
      expect(created.status).toBe(400);
      expect(created.body.error.fields).toEqual({ [key]: "unknown field" });
      expect(await service.sql`SELECT 1 FROM clients WHERE name = ${name}`).toHaveLength(0);

      const client = await createClient(service);
      const rule = await createRule(service, client);
      const patched = await service.call("PATCH", `/api/v1/rules/${rule.id}`, {
        rawBody: `{"version": 1, "enabled": false, "${key}": "x"}`,
        headers: json,
        token: client.key,
      });
      expect(patched.body.error.fields).toEqual({ [key]: "unknown field" });
      expect((await service.call("GET", `/api/v1/rules/${rule.id}`, { token: client.key })).body).toEqual(
        rule,
      );

      const listed = await service.call("GET", `/api/v1/rules?${key}=1`, { token: client.key });
      expect(listed.status).toBe(400);
      expect(listed.body.error.fields).toEqual({ [key]: "unknown parameter" });
    });
  }
});

describe("the rule-service process: oversized bodies get the JSON 413, never Bun's bare one", () => {
  let rs: RuleServiceProcess;
  beforeAll(async () => {
    rs = await startRuleServiceProcess(db);
  });
  afterAll(() => rs?.stop());

  const expected413 = {
    error: { code: "payload_too_large", message: `the body must be at most ${limitBytes} bytes` },
  };

  test("declared, streamed and announced-but-not-sent, on the API and the console", async () => {
    const huge = JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) });
    const headers = { authorization: `Bearer ${rs.adminToken}`, "content-type": "application/json" };
    const declared = await fetch(`${rs.url}/api/v1/clients`, { method: "POST", headers, body: huge });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toEqual(expected413);
    const streamed = await fetch(`${rs.url}/api/v1/clients`, {
      method: "POST",
      headers,
      body: new Blob([huge]).stream(),
    });
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toEqual(expected413);
    for (const path of ["/api/v1/clients", "/api/v1/console/load"]) {
      const announced = await rawRequest(rs.url, {
        method: "POST",
        path,
        headers: { ...headers, "content-length": String(2 ** 30) },
        body: '{"name": "',
      });
      expect({ path, status: announced.status }).toEqual({ path, status: 413 });
      expect(JSON.parse(announced.body).error.code).toBe("payload_too_large");
    }
    // The process still serves.
    expect((await rs.call("GET", "/api/v1/clients")).status).toBe(200);
  });
});

/** A small seeded PRNG so a failing case can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nastyStrings = [
  "'; DROP TABLE rules; --",
  '" OR 1=1 --',
  "\\x00",
  "\u0000",
  "\ud800",
  "🚨💥",
  "ｓｅｖｅｒｉｔｙ",
  "*",
  "%s%n",
  "{{7*7}}",
  "null",
  "x".repeat(5000),
  "a@b.co,",
  "javascript:alert(1)",
  "https://",
];
const keys = [
  "name",
  "version",
  "severity",
  "source",
  "enabled",
  "client_id",
  "type",
  "value",
  "secret",
  "__proto__",
  "constructor",
  "id",
  "",
];

function randomValue(rand: () => number, depth: number): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  switch (Math.floor(rand() * (depth > 3 ? 5 : 7))) {
    case 0:
      return pick(nastyStrings);
    case 1:
      return pick([0, -1, 1, 1.5, 2 ** 31, 2 ** 53 + 2, -0, 1e308, -1e308]);
    case 2:
      return pick([true, false, null]);
    case 3:
      return pick(["LOW", "HIGH", "*", "email", "webhook", crypto.randomUUID(), "https://example.com/x"]);
    case 4:
      return String.fromCodePoint(...Array.from({ length: 8 }, () => Math.floor(rand() * 0x10ffff) % 0xd800));
    case 5:
      return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(rand() * 5) }, () => [pick(keys), randomValue(rand, depth + 1)]),
      );
  }
}

test("fuzz: random bodies, paths and queries never cause a 5xx", async () => {
  const client = await createClient(service);
  const rule = await createRule(service, client);
  const endpoint = (
    await service.call("POST", `/api/v1/rules/${rule.id}/endpoints`, {
      token: client.key,
      body: { type: "webhook", value: "https://example.com/h" },
    })
  ).body;
  const targets: [string, string][] = [
    ["POST", "/api/v1/rules"],
    ["PUT", `/api/v1/rules/${rule.id}`],
    ["PATCH", `/api/v1/rules/${rule.id}`],
    ["POST", `/api/v1/rules/${rule.id}/endpoints`],
    ["PATCH", `/api/v1/endpoints/${endpoint.id}`],
    ["PUT", `/api/v1/clients/${client.id}`],
    ["PATCH", `/api/v1/clients/${client.id}`],
  ];
  const rand = prng(20_240_601);
  for (let i = 0; i < 600; i++) {
    const [method, path] = targets[i % targets.length] as [string, string];
    const body = rand() < 0.8 ? { version: 1, ...(randomValue(rand, 5) as object) } : randomValue(rand, 0);
    const token = rand() < 0.5 ? client.key : undefined;
    const reply = await service.call(method, path, { body, token });
    expect({ i, method, path, body, status: reply.status < 500 }).toEqual({
      i,
      method,
      path,
      body,
      status: true,
    });
    if (reply.status >= 400) expect(typeof reply.body.error.code).toBe("string");
  }
  for (let i = 0; i < 200; i++) {
    const text = encodeURIComponent(String(randomValue(rand, 4)).toWellFormed());
    const paths = [
      `/api/v1/rules/${text}`,
      `/api/v1/notifications/${text}`,
      `/api/v1/rules?${keys[i % keys.length]}=${text}`,
      `/api/v1/notifications?status=${text}&cursor=${text}`,
    ];
    for (const path of paths) expect((await service.call("GET", path)).status).toBeLessThan(500);
  }
});
