import { afterAll, expect, test } from "bun:test";
import { createRuleServiceApp } from "../../src/stages/rule-service/app.ts";
import { adminToken, type Service, startService } from "./helpers.ts";

const service: Service = startService();
afterAll(() => service.stop());

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
  const served = Object.keys(createRuleServiceApp({ sql: service.sql, adminToken }).routes);
  const documented = Object.keys((await fetchDoc()).paths);
  expect(new Set(served.map((path) => path.replace(/:(\w+)/g, "{$1}")))).toEqual(new Set(documented));
});

test("each path serves exactly its documented methods", async () => {
  const doc = await fetchDoc();
  for (const [template, operations] of Object.entries(doc.paths as Record<string, object>)) {
    const documented = Object.keys(operations).map((m) => m.toUpperCase());
    const isInt64 = template.startsWith("/api/v1/notifications/");
    const path = template.replace("{id}", isInt64 ? "1" : crypto.randomUUID());
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
