import { afterAll, describe, expect, test } from "bun:test";
import { adminToken, createClient, createRule, type Service, startService } from "./helpers.ts";

const service: Service = startService();
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
