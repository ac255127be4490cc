import { afterAll, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { createClient, createRule, insertNotification, type Service, startService } from "./helpers.ts";

const db = useTestSchema("rule_service_isolation");
const service: Service = startService(db);
afterAll(() => service.stop());
const scopeName = () => `iso-${crypto.randomUUID()}`;

/** Client A's key against client B's resources, over every route of the API. */
test("a client key cannot see or change another client's resources", async () => {
  const a = await createClient(service);
  const b = await createClient(service);
  const rule = await createRule(service, b);
  const endpoint = (
    await service.call("POST", `/api/v1/rules/${rule.id}/endpoints`, {
      token: b.key,
      body: { type: "email", value: "b@example.com" },
    })
  ).body;
  const notification = await insertNotification(service.sql, b.id);
  await insertNotification(service.sql, a.id);
  const ruleBody = { severity: "LOW", source: "x", name: "y", enabled: true, version: 1 };
  const keyOfB = (await service.call("POST", `/api/v1/clients/${b.id}/api-keys`, { token: b.key })).body;
  const credentialOfB = (
    await service.call("POST", "/api/v1/ingest-credentials", { token: b.key, body: { name: "b" } })
  ).body;
  const silence = {
    matchers: '{source="db"}',
    ends_at: new Date(Date.now() + 3_600_000).toISOString(),
    created_by: "b",
    comment: "maintenance",
  };
  const silenceOfB = (await service.call("POST", "/api/v1/silences", { token: b.key, body: silence })).body;
  const scope = (await service.call("POST", "/api/v1/scopes", { body: { name: scopeName() } })).body;
  const grant = `/api/v1/scopes/${scope.id}/grants`;
  expect((await service.call("POST", grant, { body: { client_id: b.id } })).status).toBe(201);

  // [method, route template, concrete path, body, expected status]
  const matrix: [string, string, string, unknown, number][] = [
    ["POST", "/api/v1/clients", "/api/v1/clients", { name: "x" }, 403],
    ["GET", "/api/v1/clients", "/api/v1/clients", undefined, 403],
    ["GET", "/api/v1/clients/{id}", `/api/v1/clients/${b.id}`, undefined, 404],
    ["PUT", "/api/v1/clients/{id}", `/api/v1/clients/${b.id}`, { name: "x", version: 1 }, 404],
    ["PATCH", "/api/v1/clients/{id}", `/api/v1/clients/${b.id}`, { name: "x", version: 1 }, 404],
    ["DELETE", "/api/v1/clients/{id}", `/api/v1/clients/${b.id}`, undefined, 403],
    ["POST", "/api/v1/clients/{id}/api-keys", `/api/v1/clients/${b.id}/api-keys`, undefined, 404],
    ["GET", "/api/v1/clients/{id}/api-keys", `/api/v1/clients/${b.id}/api-keys`, undefined, 404],
    ["DELETE", "/api/v1/api-keys/{id}", `/api/v1/api-keys/${keyOfB.id}`, undefined, 404],
    ["POST", "/api/v1/ingest-credentials", "/api/v1/ingest-credentials", { name: "x", client_id: b.id }, 404],
    [
      "POST",
      "/api/v1/ingest-credentials",
      "/api/v1/ingest-credentials",
      { name: "x", scope_id: scope.id },
      403,
    ],
    [
      "DELETE",
      "/api/v1/ingest-credentials/{id}",
      `/api/v1/ingest-credentials/${credentialOfB.id}`,
      undefined,
      404,
    ],
    ["POST", "/api/v1/scopes", "/api/v1/scopes", { name: scopeName() }, 403],
    ["DELETE", "/api/v1/scopes/{id}", `/api/v1/scopes/${scope.id}`, undefined, 403],
    ["POST", "/api/v1/scopes/{id}/grants", grant, { client_id: a.id }, 403],
    ["DELETE", "/api/v1/scopes/{id}/grants", `${grant}?client_id=${b.id}`, undefined, 403],
    [
      "POST",
      "/api/v1/rules",
      "/api/v1/rules",
      { client_id: b.id, severity: "LOW", source: "x", name: "y" },
      404,
    ],
    ["GET", "/api/v1/rules/{id}", `/api/v1/rules/${rule.id}`, undefined, 404],
    ["PUT", "/api/v1/rules/{id}", `/api/v1/rules/${rule.id}`, ruleBody, 404],
    ["PATCH", "/api/v1/rules/{id}", `/api/v1/rules/${rule.id}`, { enabled: false, version: 1 }, 404],
    ["DELETE", "/api/v1/rules/{id}", `/api/v1/rules/${rule.id}`, undefined, 404],
    [
      "POST",
      "/api/v1/rules/{id}/endpoints",
      `/api/v1/rules/${rule.id}/endpoints`,
      { type: "email", value: "a@example.com" },
      404,
    ],
    ["GET", "/api/v1/rules/{id}/endpoints", `/api/v1/rules/${rule.id}/endpoints`, undefined, 404],
    ["GET", "/api/v1/endpoints/{id}", `/api/v1/endpoints/${endpoint.id}`, undefined, 404],
    [
      "PATCH",
      "/api/v1/endpoints/{id}",
      `/api/v1/endpoints/${endpoint.id}`,
      { enabled: false, version: 1 },
      404,
    ],
    ["DELETE", "/api/v1/endpoints/{id}", `/api/v1/endpoints/${endpoint.id}`, undefined, 404],
    ["GET", "/api/v1/notifications/{id}", `/api/v1/notifications/${notification.id}`, undefined, 404],
    ["POST", "/api/v1/silences", "/api/v1/silences", { ...silence, client_id: b.id }, 404],
    ["GET", "/api/v1/silences/{id}", `/api/v1/silences/${silenceOfB.id}`, undefined, 404],
    ["DELETE", "/api/v1/silences/{id}", `/api/v1/silences/${silenceOfB.id}`, undefined, 404],
    ["GET", "/api/v1/silences", `/api/v1/silences?client_id=${b.id}`, undefined, 200],
    // Lists filtered to another client answer empty rather than revealing whether it exists.
    ["GET", "/api/v1/rules", `/api/v1/rules?client_id=${b.id}`, undefined, 200],
    ["GET", "/api/v1/notifications", `/api/v1/notifications?client_id=${b.id}`, undefined, 200],
    ["GET", "/api/v1/ingest-credentials", `/api/v1/ingest-credentials?client_id=${b.id}`, undefined, 200],
    ["GET", "/api/v1/ingest-credentials", `/api/v1/ingest-credentials?scope_id=${scope.id}`, undefined, 200],
    ["GET", "/api/v1/scopes", `/api/v1/scopes?client_id=${b.id}`, undefined, 200],
  ];
  for (const [method, , path, body, status] of matrix) {
    const reply = await service.call(method, path, { token: a.key, body });
    expect({ method, path, status: reply.status }).toEqual({ method, path, status });
    if (status === 200) expect(reply.body.items).toEqual([]);
  }

  // Unfiltered lists show only A's own data; A is granted no shared scope.
  for (const path of [
    "/api/v1/rules",
    "/api/v1/notifications",
    "/api/v1/ingest-credentials",
    "/api/v1/silences",
  ]) {
    const items = (await service.call("GET", path, { token: a.key })).body.items;
    expect(items.every((item: { client_id: string }) => item.client_id === a.id)).toBe(true);
  }
  expect((await service.call("GET", "/api/v1/scopes", { token: a.key })).body.items).toEqual([]);

  // Nothing of B's changed.
  expect((await service.call("GET", `/api/v1/rules/${rule.id}`, { token: b.key })).body).toEqual(rule);
  expect((await service.call("GET", `/api/v1/endpoints/${endpoint.id}`, { token: b.key })).body).toEqual(
    endpoint,
  );
  expect((await service.call("GET", `/api/v1/clients/${b.id}`)).body.version).toBe(1);
  const keysOfB = (await service.call("GET", `/api/v1/clients/${b.id}/api-keys`, { token: b.key })).body;
  expect(keysOfB.items.map((k: { revoked_at: unknown }) => k.revoked_at)).toEqual([null, null]);
  const credentialsOfB = (await service.call("GET", "/api/v1/ingest-credentials", { token: b.key })).body;
  expect(credentialsOfB.items).toEqual([{ ...credentialOfB, secret: undefined, revoked_at: null }]);
  expect((await service.call("GET", "/api/v1/scopes", { token: b.key })).body.items).toEqual([scope]);
  expect((await service.call("GET", `/api/v1/silences/${silenceOfB.id}`, { token: b.key })).body).toEqual(
    silenceOfB,
  );
  expect(
    (await service.call("GET", `/api/v1/notifications/${notification.id}`, { token: b.key })).status,
  ).toBe(200);

  // The matrix covers every operation the API documents.
  const doc = (await service.call("GET", "/openapi.json", { token: null })).body;
  const documented = Object.entries(doc.paths as Record<string, object>)
    .filter(([path]) => path.startsWith("/api/"))
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  expect(new Set(matrix.map(([method, template]) => `${method} ${template}`))).toEqual(new Set(documented));
});
