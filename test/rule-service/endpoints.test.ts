import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { createClient, createRule, type Service, startService } from "./helpers.ts";
import { type RuleServiceProcess, startRuleServiceProcess } from "./process.ts";

const db = useTestSchema("rule_service_endpoints");
const service: Service = startService(db);
afterAll(() => service.stop());

async function setup() {
  const client = await createClient(service);
  const rule = await createRule(service, client);
  return { client, rule, as: { token: client.key }, endpointsPath: `/api/v1/rules/${rule.id}/endpoints` };
}

describe("endpoints", () => {
  test("each type validates its value; emails may be a comma-separated list", async () => {
    const { as, endpointsPath } = await setup();
    const valid = [
      {
        type: "email",
        value: " ops@example.com , oncall@example.org",
        stored: "ops@example.com,oncall@example.org",
      },
      { type: "slack", value: "https://hooks.slack.com/services/T/B/X" },
      { type: "webhook", value: "http://203.0.113.7:8080/hook?x=1" },
    ];
    for (const { stored, ...body } of valid) {
      const reply = await service.call("POST", endpointsPath, { ...as, body });
      expect(reply.status).toBe(201);
      expect(reply.body).toMatchObject({
        type: body.type,
        value: stored ?? body.value,
        enabled: true,
        version: 1,
      });
    }
    const invalid = [
      { type: "email", value: "not-an-address" },
      { type: "email", value: "a@example.com,,b@example.com" },
      { type: "email", value: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`).join(",") },
      { type: "slack", value: "ftp://example.com/x" },
      { type: "webhook", value: "example.com/hook" },
      { type: "webhook", value: "https://exa mple.com" },
    ];
    for (const body of invalid) {
      const reply = await service.call("POST", endpointsPath, { ...as, body });
      expect(reply.status).toBe(400);
      expect(Object.keys(reply.body.error.fields)).toEqual(["value"]);
    }
    const badType = await service.call("POST", endpointsPath, {
      ...as,
      body: { type: "sms", value: "1", x: 1 },
    });
    expect(Object.keys(badType.body.error.fields).sort()).toEqual(["type", "x"]);
  });

  test("the webhook secret is write-only and webhook-only", async () => {
    const { as, endpointsPath } = await setup();
    const secret = "s3cret-s3cret-s3cret";
    const created = await service.call("POST", endpointsPath, {
      ...as,
      body: { type: "webhook", value: "https://example.com/h", secret },
    });
    expect(created.status).toBe(201);
    expect(created.body.has_secret).toBe(true);
    expect(JSON.stringify(created.body)).not.toContain(secret);
    const path = `/api/v1/endpoints/${created.body.id}`;
    expect(JSON.stringify((await service.call("GET", path, as)).body)).not.toContain(secret);
    expect(JSON.stringify((await service.call("GET", endpointsPath, as)).body)).not.toContain(secret);

    const onSlack = await service.call("POST", endpointsPath, {
      ...as,
      body: { type: "slack", value: "https://example.com/s", secret },
    });
    expect(onSlack.body.error.fields).toEqual({ secret: "only webhook endpoints take a secret" });
    const cleared = await service.call("PATCH", path, { ...as, body: { secret: null, version: 1 } });
    expect(cleared.body).toMatchObject({ has_secret: false, version: 2 });
    const reset = await service.call("PATCH", path, { ...as, body: { secret, version: 2 } });
    expect(reset.body.has_secret).toBe(true);
    // Switching away from webhook drops the secret.
    const slack = await service.call("PATCH", path, { ...as, body: { type: "slack", version: 3 } });
    expect(slack.body).toMatchObject({ type: "slack", has_secret: false });
  });

  test("get, update and delete with optimistic locking", async () => {
    const { as, endpointsPath, rule } = await setup();
    const created = await service.call("POST", endpointsPath, {
      ...as,
      body: { type: "email", value: "a@example.com", enabled: false },
    });
    const path = `/api/v1/endpoints/${created.body.id}`;
    expect((await service.call("GET", path, as)).body).toEqual(created.body);
    expect(created.body.rule_id).toBe(rule.id);

    const patched = await service.call("PATCH", path, {
      ...as,
      body: { value: "b@example.com", version: 1 },
    });
    expect(patched.body).toMatchObject({ value: "b@example.com", version: 2, enabled: false });
    const stale = await service.call("PATCH", path, { ...as, body: { enabled: true, version: 1 } });
    expect(stale.status).toBe(409);
    expect(stale.body.error.current_version).toBe(2);
    const wrongType = await service.call("PATCH", path, { ...as, body: { type: "webhook", version: 2 } });
    expect(wrongType.body.error.fields).toHaveProperty("value");

    expect((await service.call("DELETE", `${path}?version=1`, as)).status).toBe(409);
    expect((await service.call("DELETE", `${path}?version=2`, as)).status).toBe(204);
    expect((await service.call("GET", path, as)).status).toBe(404);
    expect((await service.call("PATCH", path, { ...as, body: { version: 2 } })).status).toBe(404);
    expect((await service.call("DELETE", path, as)).status).toBe(404);
  });

  test("duplicates conflict; endpoint changes write no outbox rows", async () => {
    const { as, endpointsPath, rule } = await setup();
    const body = { type: "slack", value: "https://example.com/s" };
    expect((await service.call("POST", endpointsPath, { ...as, body })).status).toBe(201);
    expect((await service.call("POST", endpointsPath, { ...as, body })).status).toBe(409);
    const events = await service.sql`SELECT 1 FROM rule_outbox WHERE rule_id = ${rule.id}`;
    expect(events.length).toBe(1);
  });

  test("unknown rules and endpoints are 404; malformed ids 400", async () => {
    const { as } = await setup();
    const unknownRule = `/api/v1/rules/${crypto.randomUUID()}/endpoints`;
    const body = { type: "slack", value: "https://example.com/s" };
    expect((await service.call("POST", unknownRule, { ...as, body })).status).toBe(404);
    expect((await service.call("GET", unknownRule, as)).status).toBe(404);
    expect((await service.call("GET", `/api/v1/endpoints/${crypto.randomUUID()}`, as)).status).toBe(404);
    expect((await service.call("GET", "/api/v1/endpoints/123", as)).status).toBe(400);
    expect((await service.call("GET", "/api/v1/rules/123/endpoints", as)).status).toBe(400);
  });

  test("deleting the rule deletes its endpoints", async () => {
    const { as, endpointsPath, rule } = await setup();
    const created = await service.call("POST", endpointsPath, {
      ...as,
      body: { type: "email", value: "a@example.com" },
    });
    await service.call("DELETE", `/api/v1/rules/${rule.id}`, as);
    expect((await service.call("GET", `/api/v1/endpoints/${created.body.id}`, as)).status).toBe(404);
  });
});

/** Hosts the sender's SSRF guard refuses whatever DNS says, each as the URL parser will see it. */
const internalHosts: [url: string, range: string][] = [
  ["http://10.0.0.1:8080/hook", "private"],
  ["http://172.16.0.1/", "private"],
  ["http://192.168.1.1/", "private"],
  ["http://100.64.0.1/", "carrier-grade NAT"],
  ["http://127.0.0.1:8090/hook", "loopback"],
  ["http://2130706433/", "loopback"],
  ["http://0x7f.0.0.1/", "loopback"],
  ["http://0177.0.0.1/", "loopback"],
  ["http://169.254.169.254/latest/meta-data/", "link-local (incl. cloud metadata)"],
  ["http://0.0.0.0:80/", "this-network"],
  ["http://224.0.0.1/", "multicast"],
  ["http://240.0.0.1/", "reserved/broadcast"],
  ["http://[::1]:8080/", "loopback"],
  ["http://[::]/", "unspecified"],
  ["http://[fd00::1]/hook", "unique-local"],
  ["http://[fe80::1]/", "link-local"],
  ["http://[::ffff:169.254.169.254]/", "link-local (incl. cloud metadata)"],
  ["http://[::ffff:10.0.0.1]/", "private"],
  ["http://[64:ff9b::127.0.0.1]/", "loopback"],
  ["https://user@10.1.2.3/", "private"],
  ["http://localhost:8080/", "loopback"],
  ["http://LOCALHOST./", "loopback"],
  ["http://api.localhost/", "loopback"],
];

describe("SSRF: endpoint URLs naming an internal address are refused when saved", () => {
  test("at creation and on update, for webhooks and Slack; nothing is written", async () => {
    const { as, endpointsPath } = await setup();
    const kept = await service.call("POST", endpointsPath, {
      ...as,
      body: { type: "webhook", value: "https://hooks.example.com/h" },
    });
    expect(kept.status).toBe(201);
    const path = `/api/v1/endpoints/${kept.body.id}`;
    for (const [url, range] of internalHosts) {
      for (const type of ["webhook", "slack"]) {
        const created = await service.call("POST", endpointsPath, { ...as, body: { type, value: url } });
        expect({ url, type, status: created.status, message: created.body.error?.message }).toEqual({
          url,
          type,
          status: 400,
          message: "invalid endpoint value",
        });
        expect(Object.keys(created.body.error.fields)).toEqual(["value"]);
        expect(created.body.error.fields.value).toStartWith("SSRF guard: ");
        expect(created.body.error.fields.value).toEndWith(`(${range})`);
      }
      const updated = await service.call("PATCH", path, { ...as, body: { value: url, version: 1 } });
      expect({ url, status: updated.status }).toEqual({ url, status: 400 });
      expect(updated.body.error.fields.value).toEndWith(`(${range})`);
      const retyped = await service.call("PATCH", path, {
        ...as,
        body: { type: "slack", value: url, version: 1 },
      });
      expect({ url, status: retyped.status }).toEqual({ url, status: 400 });
    }
    expect((await service.call("GET", path, as)).body).toEqual(kept.body);
    const rows = await service.sql`SELECT value FROM endpoints WHERE rule_id = ${kept.body.rule_id}`;
    expect(rows.map((row) => row.value)).toEqual(["https://hooks.example.com/h"]);
  });

  test("public literals and host names pass: names are checked after DNS, at delivery", async () => {
    const { as, endpointsPath } = await setup();
    for (const value of ["https://8.8.8.8/hook", "https://[2606:4700::1111]/", "http://127.0.0.1.nip.io/"]) {
      const created = await service.call("POST", endpointsPath, { ...as, body: { type: "webhook", value } });
      expect({ value, status: created.status }).toEqual({ value, status: 201 });
    }
  });
});

describe("SSRF: the rule-service process honours the sender's allow-list (SSRF_ALLOW_CIDRS, SSRF_ALLOW_HOSTS)", () => {
  let rs: RuleServiceProcess;
  beforeAll(async () => {
    rs = await startRuleServiceProcess(db, {
      SSRF_ALLOW_CIDRS: "127.0.0.1/32",
      SSRF_ALLOW_HOSTS: "localhost",
    });
  });
  afterAll(() => rs?.stop());

  test("allow-listed targets (the tests' and the demo's local sinks) are saved, the rest still refused", async () => {
    const client = await rs.call("POST", "/api/v1/clients", { name: `test-${crypto.randomUUID()}` });
    const rule = await rs.call("POST", "/api/v1/rules", {
      client_id: client.body.id,
      severity: "HIGH",
      source: "db",
      name: "cpu",
    });
    expect(rule.status).toBe(201);
    const endpointsPath = `/api/v1/rules/${rule.body.id}/endpoints`;
    const allowed = ["http://127.0.0.1:8090/hook/a", "http://localhost:8090/hook/b"];
    for (const value of allowed) {
      const created = await rs.call("POST", endpointsPath, { type: "webhook", value });
      expect({ value, status: created.status }).toEqual({ value, status: 201 });
    }
    for (const [value, range] of [
      ["http://127.0.0.2/", "loopback"],
      ["http://[::1]/", "loopback"],
      ["http://10.0.0.1/", "private"],
      ["http://169.254.169.254/", "link-local (incl. cloud metadata)"],
    ]) {
      const created = await rs.call("POST", endpointsPath, { type: "webhook", value });
      expect({ value, status: created.status }).toEqual({ value, status: 400 });
      expect(created.body.error.fields.value).toEndWith(`(${range})`);
    }
    const [first] = (await rs.call("GET", endpointsPath)).body.items;
    const moved = await rs.call("PATCH", `/api/v1/endpoints/${first.id}`, {
      value: "http://127.0.0.1:9/elsewhere",
      version: 1,
    });
    expect(moved.status).toBe(200);
    const refused = await rs.call("PATCH", `/api/v1/endpoints/${first.id}`, {
      value: "http://10.0.0.1/",
      version: 2,
    });
    expect(refused.status).toBe(400);
  });
});
