/**
 * The rule-service process with a tiny request rate (API_RATE_*): each caller gets exactly the burst,
 * then 429 with Retry-After, without touching anyone else's budget.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http from "node:http";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import { insertApiKey } from "../../src/stages/rule-service/api-keys-store.ts";
import { insertClient } from "../../src/stages/rule-service/clients-store.ts";

const burst = 4;
const over = 3;
const db = useTestSchema("rule_rate");
const { sql } = db;
const adminToken = `admin-${crypto.randomUUID()}`;
let stage: StageProcess;
let baseUrl: string;
// Made in the database, so that setting up spends none of the admin token's budget.
let keyA: string;
let keyB: string;
/** Client C holds two keys; client D's key is for the console. */
let clientC: { id: string; keys: string[] };
let keyD: string;

async function newClient(prefix: string, keyCount = 1): Promise<{ id: string; keys: string[] }> {
  const { id } = await insertClient(sql, uniqueName(prefix));
  const keys: string[] = [];
  for (let i = 0; i < keyCount; i++) keys.push((await sql.begin((tx) => insertApiKey(tx, id))).key);
  return { id, keys };
}

beforeAll(async () => {
  [keyA = ""] = (await newClient("rate-a")).keys;
  [keyB = ""] = (await newClient("rate-b")).keys;
  clientC = await newClient("rate-c", 2);
  [keyD = ""] = (await newClient("rate-d")).keys;
  stage = await startStage("rule-service", {
    POSTGRES_URL: db.url,
    ADMIN_TOKEN: adminToken,
    RULE_CHANGED_TOPIC: uniqueName("test-rate.rule.changed"),
    // One token a second is the least the variable allows; the bursts below take milliseconds.
    API_RATE_PER_SECOND: "1",
    API_RATE_BURST: String(burst),
  });
  baseUrl = `http://127.0.0.1:${stage.httpPort}`;
});

afterAll(async () => {
  if (stage) await stopStage(stage);
});

interface Reply {
  status: number;
  retryAfter: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  body: any;
}

/** `method path` with `token` (null: none), from `localAddress` (another caller's IP) if given. */
function send(method: string, path: string, token: string | null, localAddress?: string): Promise<Reply> {
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  return new Promise((resolve, reject) => {
    const options = { method, headers, localAddress };
    const request = http.request(new URL(path, baseUrl), options, (response) => {
      let text = "";
      response.on("data", (chunk) => {
        text += chunk;
      });
      response.on("end", () => {
        const retryAfter = response.headers["retry-after"];
        const isJson = response.headers["content-type"]?.startsWith("application/json");
        resolve({
          status: response.statusCode ?? 0,
          retryAfter: typeof retryAfter === "string" ? retryAfter : null,
          body: isJson && text ? JSON.parse(text) : text,
        });
      });
    });
    request.on("error", reject);
    request.end();
  });
}

const get = (path: string, token: string | null, localAddress?: string): Promise<Reply> =>
  send("GET", path, token, localAddress);

/** `count` requests at once; the statuses sorted, and the 429s. */
async function burstOf(count: number, send: () => Promise<Reply>) {
  const replies = await Promise.all(Array.from({ length: count }, send));
  return {
    statuses: replies.map((r) => r.status).sort(),
    refused: replies.filter((r) => r.status === 429),
  };
}

function expectRateLimited(refused: Reply[]): void {
  for (const reply of refused) {
    expect(reply.retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(reply.body).toEqual({ error: { code: "rate_limited", message: expect.any(String) } });
  }
}

const repeat = (status: number, count: number): number[] => new Array(count).fill(status);

describe("API_RATE_PER_SECOND / API_RATE_BURST", () => {
  test("a client key gets exactly the burst, then 429; other callers are unaffected; Retry-After is honest", async () => {
    const { statuses, refused } = await burstOf(burst + over, () => get("/api/v1/rules", keyA));
    expect(statuses).toEqual([...repeat(200, burst), ...repeat(429, over)]);
    expectRateLimited(refused);

    expect((await get("/api/v1/rules", keyB)).status).toBe(200);
    expect((await get("/api/v1/clients", adminToken)).status).toBe(200);
    expect((await get("/api/v1/rules", null)).status).toBe(401);

    const waitSeconds = Math.max(...refused.map((r) => Number(r.retryAfter)));
    await Bun.sleep(waitSeconds * 1000);
    expect((await get("/api/v1/rules", keyA)).status).toBe(200);
  });

  test("a client's keys share one budget: minting more keys buys no more requests", async () => {
    const { id, keys } = clientC;
    let sent = 0;
    const { statuses, refused } = await burstOf(burst + over, () =>
      get("/api/v1/rules", keys[sent++ % keys.length] ?? ""),
    );
    expect(statuses).toEqual([...repeat(200, burst), ...repeat(429, over)]);
    expectRateLimited(refused);
    // Minting is charged to the same budget; a key minted straight in the database spends it too.
    expect((await send("POST", `/api/v1/clients/${id}/api-keys`, keys[1] ?? "")).status).toBe(429);
    const minted = (await sql.begin((tx) => insertApiKey(tx, id))).key;
    expect((await get("/api/v1/rules", minted)).status).toBe(429);
    expect((await get("/api/v1/rules", keyB)).status).toBe(200);
  });

  test("the console's routes are behind the same limiter, sharing the caller's budget", async () => {
    const { statuses, refused } = await burstOf(burst + over, () => get("/api/v1/console/session", keyD));
    expect(statuses).toEqual([...repeat(200, burst), ...repeat(429, over)]);
    expectRateLimited(refused);
    expect((await get("/api/v1/rules", keyD)).status).toBe(429);
    const endpointTest = await send("POST", `/api/v1/console/endpoints/${crypto.randomUUID()}/test`, keyD);
    expect(endpointTest.status).toBe(429);
    // Unauthenticated console calls spend the address's budget.
    const from = "127.0.0.6";
    const anonymous = await burstOf(burst + over, () => get("/api/v1/console/stats", null, from));
    expect(anonymous.statuses).toEqual([...repeat(401, burst), ...repeat(429, over)]);
  });

  test("the admin token has a budget of its own", async () => {
    const { statuses, refused } = await burstOf(burst + over, () => get("/api/v1/clients", adminToken));
    expect(statuses).toEqual([...repeat(200, burst), ...repeat(429, over)]);
    expectRateLimited(refused);
    expect((await get("/api/v1/rules", keyB)).status).toBe(200);
  });

  test("unauthenticated requests are limited per remote address, the OpenAPI document included", async () => {
    const from = "127.0.0.3";
    const { statuses, refused } = await burstOf(burst + over, () =>
      get("/api/v1/rules", "not-a-valid-token", from),
    );
    expect(statuses).toEqual([...repeat(401, burst), ...repeat(429, over)]);
    expectRateLimited(refused);
    expect((await get("/openapi.json", null, from)).status).toBe(429);
    // Another address, and a valid key from the exhausted one, still get through.
    expect((await get("/openapi.json", null, "127.0.0.4")).status).toBe(200);
    expect((await get("/api/v1/rules", keyB, from)).status).toBe(200);
  });

  test("health, readiness, metrics and the console's pages are not limited", async () => {
    const from = "127.0.0.5";
    const paths = ["/healthz", "/readyz", "/metrics", "/console"];
    const replies = await Promise.all(
      Array.from({ length: burst + over }, () => paths.map((path) => get(path, null, from))).flat(),
    );
    expect(replies.filter((r) => r.status !== 200).map((r) => r.status)).toEqual([]);
  });
});
