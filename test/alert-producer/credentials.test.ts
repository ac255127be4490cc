/**
 * Ingest's credentials as a hostile caller meets them, against `main.ts serve`, the real broker and
 * Postgres: without a valid credential nothing is read or written; with one, every alert carries its scope.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { issueCredential, type TestCredential } from "../../harness/ingest-credentials.ts";
import { uniqueName } from "../../harness/names.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { newTopic, postJson, type Server, startServer, stopServer, TopicReader } from "./helpers.ts";

let server: Server;
let reader: TopicReader;
const db = useTestSchema("producer_credentials");
const { sql } = db;
let sharedScopeId = "";

beforeAll(async () => {
  const topic = await newTopic();
  server = await startServer(db, topic);
  reader = new TopicReader(topic);
  const [scope] = await sql<{ id: string }[]>`
    INSERT INTO shared_scopes (name) VALUES (${uniqueName("test-ingest")}) RETURNING id`;
  sharedScopeId = (scope as { id: string }).id;
});

afterAll(async () => {
  await reader.close();
  await stopServer(server);
});

const v1 = (id: string) => ({ alert_id: id, severity: "HIGH", source: "credentials-test", name: "n" });
const v2 = (instance: string) => [{ labels: { alertname: "n", severity: "critical", instance } }];
const basic = (user: string, secret: string) =>
  `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;

/** The records written under each id (waiting up to `timeoutMs`). */
const writtenOf = async (ids: readonly string[], timeoutMs = 3000) =>
  (await reader.waitFor(ids, timeoutMs)).flat();

describe("refused with 401 JSON, nothing written", () => {
  const refusals: [string, () => Promise<string>][] = [
    ["no Authorization header", async () => ""],
    ["an unknown ik_ secret", async () => `Bearer ik_${"A".repeat(43)}`],
    ["a malformed secret", async () => "Bearer ik_short"],
    ["another scheme", async () => `Token ${server.credential.secret}`],
    ["an API key instead of an ingest credential", async () => `Bearer ak_${"A".repeat(43)}`],
    [
      "basic auth without a colon",
      async () => `Basic ${Buffer.from(server.credential.secret).toString("base64")}`,
    ],
    [
      "a header over 1 KB, even with a valid secret",
      async () => basic("u".repeat(2000), server.credential.secret),
    ],
    [
      "a revoked credential",
      async () => {
        const credential = await issueCredential(sql, { clientId: server.clientId });
        await sql`UPDATE ingest_credentials SET revoked_at = now() WHERE id = ${credential.id}`;
        return credential.authorization;
      },
    ],
    [
      "an expired credential",
      async () => {
        const credential = await issueCredential(sql, { clientId: server.clientId });
        await sql`UPDATE ingest_credentials SET expires_at = now() - interval '1 second' WHERE id = ${credential.id}`;
        return credential.authorization;
      },
    ],
  ];
  for (const [description, authorizationOf] of refusals) {
    test(description, async () => {
      const authorization = await authorizationOf();
      const id = uniqueName("refused");
      const replies = [
        await postJson(`${server.url}/api/v1/alerts`, v1(id), { authorization }),
        await postJson(`${server.url}/api/v2/alerts`, v2(id), { authorization }),
      ];
      for (const reply of replies) {
        expect(reply.status).toBe(401);
        expect(reply.headers.get("www-authenticate")).toContain("Bearer");
      }
      const [v1Reply, v2Reply] = await Promise.all(replies.map((reply) => reply.json()));
      expect(v1Reply).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
      // v2 answers as Alertmanager does: the error as a JSON string.
      expect(v2Reply).toStartWith("an ingest credential is required");
      expect(await writtenOf([id], 500)).toEqual([]);
    });
  }
});

test("bearer and basic auth (any user name) are accepted; every alert carries the credential's scope", async () => {
  const id = uniqueName("bearer");
  const reply = await postJson(`${server.url}/api/v1/alerts`, [v1(`${id}-0`), v1(`${id}-1`)]);
  expect(reply.status).toBe(200);
  const instance = uniqueName("basic");
  const viaBasic = await postJson(`${server.url}/api/v2/alerts`, v2(instance), {
    authorization: basic("prometheus", server.credential.secret),
  });
  expect(viaBasic.status).toBe(200);
  const [amId] = ((await viaBasic.json()) as { alert_ids: string[] }).alert_ids;
  const written = await writtenOf([`${id}-0`, `${id}-1`, amId as string]);
  expect(written.map((w) => w.alert.scope)).toEqual(Array(3).fill(`client:${server.clientId}`));
});

test("a shared-scope credential stamps shared:<name>; a scope in the body is refused, not taken", async () => {
  const shared: TestCredential = await issueCredential(sql, { scopeId: sharedScopeId });
  expect(shared.scope).toMatch(/^shared:test-ingest-/);
  const id = uniqueName("shared");
  expect(
    (await postJson(`${server.url}/api/v1/alerts`, v1(id), { authorization: shared.authorization })).status,
  ).toBe(200);
  const forged = await postJson(
    `${server.url}/api/v1/alerts`,
    { ...v1(`${id}-forged`), scope: "" },
    {
      authorization: shared.authorization,
    },
  );
  expect(forged.status).toBe(400);
  expect(((await forged.json()) as { error: { fields: Record<string, string> } }).error.fields).toEqual({
    scope: "unknown field",
  });
  const written = await writtenOf([id]);
  expect(written.map((w) => w.alert.scope)).toEqual([shared.scope]);
  expect(await writtenOf([`${id}-forged`], 300)).toEqual([]);
});

test("revocation takes effect on the next request", async () => {
  const credential = await issueCredential(sql, { clientId: server.clientId });
  const post = (id: string) =>
    postJson(`${server.url}/api/v1/alerts`, v1(id), { authorization: credential.authorization });
  const id = uniqueName("revoked");
  expect((await post(`${id}-before`)).status).toBe(200);
  await sql`UPDATE ingest_credentials SET revoked_at = now() WHERE id = ${credential.id}`;
  expect((await post(`${id}-after`)).status).toBe(401);
  expect((await writtenOf([`${id}-before`])).length).toBe(1);
  expect(await writtenOf([`${id}-after`], 300)).toEqual([]);
});
