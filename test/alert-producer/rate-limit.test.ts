/**
 * `main.ts serve` with a tiny request rate (INGEST_RATE_*): each remote address, and each credential,
 * gets exactly the burst, a batch counting as one request, then 429 with Retry-After; other addresses
 * and credentials are unaffected.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import http from "node:http";
import { issueCredential, type TestCredential } from "../../harness/ingest-credentials.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { newTopic, type Server, startServer, stopServer, TopicReader } from "./helpers.ts";

const burst = 3;
const over = 2;
let server: Server;
let reader: TopicReader;
const db = useTestSchema("producer_rate");
const { sql } = db;
/** A credential of its own for each test, for the server's client. */
const newCredential = (): Promise<TestCredential> => issueCredential(sql, { clientId: server.clientId });

beforeAll(async () => {
  const topic = await newTopic();
  // One token a second is the least the variable allows; the bursts below take milliseconds.
  server = await startServer(db, topic, { INGEST_RATE_PER_SECOND: "1", INGEST_RATE_BURST: String(burst) });
  reader = new TopicReader(topic);
});

afterAll(async () => {
  await reader?.close();
  if (server && server.process.exitCode === null) await stopServer(server);
});

interface Reply {
  status: number;
  retryAfter: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  body: any;
}

/** POSTs JSON from `localAddress` with `credential` (none: no Authorization header). */
function post(
  localAddress: string,
  path: string,
  body: unknown,
  credential: TestCredential | undefined,
): Promise<Reply> {
  const text = JSON.stringify(body);
  const authorization = credential ? { authorization: credential.authorization } : {};
  return new Promise((resolve, reject) => {
    const request = http.request(
      new URL(path, server.url),
      { method: "POST", headers: { "content-type": "application/json", ...authorization }, localAddress },
      (response) => {
        let answer = "";
        response.on("data", (chunk) => {
          answer += chunk;
        });
        response.on("end", () => {
          const retryAfter = response.headers["retry-after"];
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: typeof retryAfter === "string" ? retryAfter : null,
            body: JSON.parse(answer),
          });
        });
      },
    );
    request.on("error", reject);
    request.end(text);
  });
}

const alerts = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    alert_id: `${prefix}-${i}`,
    severity: "LOW",
    source: "rate-limit-test",
    name: "n",
  }));

const repeat = (status: number, count: number): number[] => new Array(count).fill(status);

test("an address gets exactly the burst of requests, batches counting as one, then 429 with Retry-After", async () => {
  const from = "127.0.0.2";
  const run = crypto.randomUUID();
  const credential = await newCredential();
  const replies = await Promise.all(
    Array.from({ length: burst + over }, (_, i) =>
      post(from, "/api/v1/alerts", alerts(`${run}-${i}`, 5), credential),
    ),
  );
  expect(replies.map((r) => r.status).sort()).toEqual([...repeat(200, burst), ...repeat(429, over)]);
  for (const reply of replies.filter((r) => r.status === 200)) expect(reply.body.accepted).toBe(5);
  const refused = replies.filter((r) => r.status === 429);
  for (const reply of refused) {
    expect(reply.retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(reply.body).toEqual({ error: { code: "rate_limited", message: expect.any(String) } });
  }

  // Both APIs share the address's budget, and another address (with another credential) has its own.
  expect((await post(from, "/api/v2/alerts", [], credential)).status).toBe(429);
  expect(
    (await post("127.0.0.3", "/api/v1/alerts", alerts(`${run}-other`, 1), await newCredential())).status,
  ).toBe(200);

  const waitSeconds = Math.max(...refused.map((r) => Number(r.retryAfter)));
  await Bun.sleep(waitSeconds * 1000);
  expect((await post(from, "/api/v1/alerts", alerts(`${run}-later`, 1), credential)).status).toBe(200);

  // What was refused was not written; by the time the later alert arrived, it would have been.
  const idsOf = (admitted: boolean) =>
    replies
      .flatMap((r, i) => ((r.status === 200) === admitted ? alerts(`${run}-${i}`, 5) : []))
      .map((a) => a.alert_id);
  const written = await reader.waitFor([...idsOf(true), `${run}-later-0`]);
  expect(written.map((copies) => copies.length)).toEqual(repeat(1, burst * 5 + 1));
  expect((await reader.waitFor(idsOf(false), 0)).flat()).toEqual([]);
});

test("refusing comes before parsing: over the limit, even an invalid body gets 429", async () => {
  const from = "127.0.0.4";
  const credential = await newCredential();
  const replies = await Promise.all(
    Array.from({ length: burst + over }, () =>
      post(from, "/api/v1/alerts", { severity: "NOPE" }, credential),
    ),
  );
  expect(replies.map((r) => r.status).sort()).toEqual([...repeat(400, burst), ...repeat(429, over)]);
});

test("a credential gets exactly the burst, whichever addresses it comes from; another credential has its own", async () => {
  const run = crypto.randomUUID();
  const credential = await newCredential();
  // One address per request: each address's own budget is untouched beyond one request.
  const addresses = Array.from({ length: burst + over }, (_, i) => `127.0.1.${i + 1}`);
  const replies = await Promise.all(
    addresses.map((from, i) => post(from, "/api/v1/alerts", alerts(`${run}-${i}`, 1), credential)),
  );
  expect(replies.map((r) => r.status).sort()).toEqual([...repeat(200, burst), ...repeat(429, over)]);
  expect(replies.find((r) => r.status === 429)?.retryAfter).toMatch(/^[1-9][0-9]*$/);
  const other = await post(
    addresses[0] as string,
    "/api/v1/alerts",
    alerts(`${run}-other`, 1),
    await newCredential(),
  );
  expect(other.status).toBe(200);
  const refusedIds = replies.flatMap((r, i) => (r.status === 429 ? [`${run}-${i}-0`] : []));
  expect((await reader.waitFor([`${run}-other-0`])).flat()).toHaveLength(1);
  expect((await reader.waitFor(refusedIds, 0)).flat()).toEqual([]);
});

test("without a credential an address gets the burst of 401s, then 429: a flood costs no credential lookups", async () => {
  const from = "127.0.0.5";
  const replies = await Promise.all(
    Array.from({ length: burst + over }, () => post(from, "/api/v1/alerts", alerts("none", 1), undefined)),
  );
  expect(replies.map((r) => r.status).sort()).toEqual([...repeat(401, burst), ...repeat(429, over)]);
});
