import { afterAll, expect, test } from "bun:test";
import { brokers, kafkaClients, quiet } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { createRuleServiceApp } from "../../src/stages/rule-service/app.ts";
import { consoleSettings, startConsole } from "../../src/stages/rule-service/console.ts";
import { adminToken, type Service, startService } from "./helpers.ts";

const { producer } = kafkaClients();
const consoleParts = startConsole(consoleSettings({}), { brokers, producer, logger: quiet });
const db = useTestSchema("rule_service_openapi");
const service: Service = startService(db, { console: consoleParts });
afterAll(async () => {
  await service.stop();
  await consoleParts.stop();
});

const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document
async function fetchDoc(): Promise<any> {
  const reply = await service.call("GET", "/openapi.json", { token: null });
  expect(reply.status).toBe(200);
  return reply.body;
}

test("the document is OpenAPI 3.1 with unique operation ids", async () => {
  const doc = await fetchDoc();
  expect(doc.openapi).toBe("3.1.0");
  const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops as object));
  const ids = operations.map((op) => op.operationId);
  expect(new Set(ids).size).toBe(ids.length);
  for (const op of operations) expect(Object.keys(op.responses).length).toBeGreaterThan(0);
});

test("every served path is documented and every documented path is served", async () => {
  const served = Object.keys(
    createRuleServiceApp({ sql: service.sql, adminToken, console: consoleParts }).routes,
  );
  const documented = Object.keys((await fetchDoc()).paths);
  expect(new Set(served.map((path) => path.replace(/:(\w+)/g, "{$1}")))).toEqual(new Set(documented));
});

test("each path serves exactly its documented methods", async () => {
  const doc = await fetchDoc();
  for (const [template, operations] of Object.entries(doc.paths as Record<string, object>)) {
    const documented = Object.keys(operations).map((m) => m.toUpperCase());
    const isInt64 = template.startsWith("/api/v1/notifications/");
    const path = template
      .replace("{id}", isInt64 ? "1" : crypto.randomUUID())
      .replace("{topic}", "alerts.new.dlq");
    for (const method of methods) {
      const reply = await service.call(method, path, { token: null });
      if (documented.includes(method)) {
        // Served: it reaches authentication (or, for the public document, succeeds).
        expect({ method, template, status: reply.status }).toEqual({
          method,
          template,
          status: template === "/openapi.json" ? 200 : 401,
        });
      } else {
        expect({ method, template, status: reply.status }).toEqual({ method, template, status: 405 });
        expect(reply.headers.get("allow")?.split(", ").sort()).toEqual([...documented].sort());
      }
    }
  }
});

test("documents key, ingest-credential, scope and grant management, with their access rules", async () => {
  const doc = await fetchDoc();
  const operation = (path: string, method: string) => doc.paths[path]?.[method];
  const expected: [string, string, string][] = [
    ["/api/v1/clients/{id}/api-keys", "post", "createApiKey"],
    ["/api/v1/clients/{id}/api-keys", "get", "listApiKeys"],
    ["/api/v1/api-keys/{id}", "delete", "revokeApiKey"],
    ["/api/v1/ingest-credentials", "post", "createIngestCredential"],
    ["/api/v1/ingest-credentials", "get", "listIngestCredentials"],
    ["/api/v1/ingest-credentials/{id}", "delete", "revokeIngestCredential"],
    ["/api/v1/scopes", "post", "createScope"],
    ["/api/v1/scopes", "get", "listScopes"],
    ["/api/v1/scopes/{id}", "delete", "deleteScope"],
    ["/api/v1/scopes/{id}/grants", "post", "grantScope"],
    ["/api/v1/scopes/{id}/grants", "delete", "revokeScopeGrant"],
  ];
  for (const [path, method, operationId] of expected) {
    expect({ path, method, operationId: operation(path, method)?.operationId }).toEqual({
      path,
      method,
      operationId,
    });
  }
  // Only the admin manages scopes and grants, and issues shared-scope credentials.
  for (const [path, method] of [
    ["/api/v1/scopes", "post"],
    ["/api/v1/scopes/{id}/grants", "post"],
    ["/api/v1/ingest-credentials", "post"],
  ] as const) {
    expect(Object.keys(operation(path, method).responses)).toContain("403");
  }
  // A key's body is optional; the secrets appear only in the create responses.
  const createKey = operation("/api/v1/clients/{id}/api-keys", "post");
  expect(createKey.requestBody.required).toBe(false);
  const created = (op: {
    responses: Record<string, { content: { "application/json": { schema: object } } }>;
  }) => op.responses["201"]?.content["application/json"].schema;
  expect(created(createKey)).toMatchObject({ required: expect.arrayContaining(["key", "expires_at"]) });
  const createCredential = operation("/api/v1/ingest-credentials", "post");
  expect(created(createCredential)).toMatchObject({ required: expect.arrayContaining(["secret", "scope"]) });
  const listed = JSON.stringify(operation("/api/v1/ingest-credentials", "get").responses["200"]);
  expect(listed).toContain("revoked_at");
  expect(listed).not.toContain('"secret"');
});

test("documents the console's routes, with their path parameters and access rules", async () => {
  const doc = await fetchDoc();
  const operation = (path: string, method: string) => doc.paths[path]?.[method];
  const expected: [string, string, string][] = [
    ["/api/v1/console/session", "get", "getConsoleSession"],
    ["/api/v1/console/clients", "get", "findConsoleClients"],
    ["/api/v1/console/stages", "get", "getStageSeries"],
    ["/api/v1/console/stats", "get", "getConsoleStats"],
    ["/api/v1/console/endpoints/{id}/test", "post", "sendTestNotification"],
    ["/api/v1/console/dead-letters", "get", "listDeadLetterTopics"],
    ["/api/v1/console/dead-letters/{topic}", "get", "listDeadLetters"],
    ["/api/v1/console/dead-letters/{topic}/replay", "post", "replayDeadLetters"],
    ["/api/v1/console/load", "get", "getLoadRun"],
    ["/api/v1/console/load", "post", "startLoadRun"],
    ["/api/v1/console/load", "delete", "stopLoadRun"],
  ];
  for (const [path, method, operationId] of expected) {
    expect({ path, method, operationId: operation(path, method)?.operationId }).toEqual({
      path,
      method,
      operationId,
    });
  }
  const replay = operation("/api/v1/console/dead-letters/{topic}/replay", "post");
  expect(replay.parameters).toContainEqual(
    expect.objectContaining({ name: "topic", in: "path", required: true }),
  );
  expect(Object.keys(replay.responses)).toContain("403");
  // A client key may use its own session, stats and test sends: no 403 there.
  expect(Object.keys(operation("/api/v1/console/stats", "get").responses)).not.toContain("403");
  expect(Object.keys(operation("/api/v1/console/endpoints/{id}/test", "post").responses)).toContain("202");
});

test("a dead-letter route refuses a malformed topic name, naming the parameter", async () => {
  const reply = await service.call("GET", "/api/v1/console/dead-letters/bad%20name");
  expect(reply.status).toBe(400);
  expect(reply.body.error.fields).toEqual({ topic: "must be a Kafka topic name" });
  const unknown = await service.call("GET", "/api/v1/console/dead-letters/not-a-console-topic.dlq");
  expect(unknown.status).toBe(404);
  expect(Object.keys(unknown.body.error.fields)).toEqual(["topic"]);
});
