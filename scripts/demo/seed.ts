/**
 * The demo's tenants, created through the rule-service API with the admin token. Idempotent: a
 * client is found by name, a rule by its three fields, an endpoint by type and value, and only what
 * is missing is created, so every `./dev up` reuses what the previous one made.
 */
import { SetupError } from "../process.ts";

type RuleSeverity = "LOW" | "MEDIUM" | "HIGH" | "CRITICAL" | "*";

interface DemoRule {
  severity: RuleSeverity;
  source: string;
  name: string;
  /** "webhook" (the webhook sink, a path per client) or an email address (the SMTP sink). */
  endpoints: string[];
}

/**
 * Rules with exact and wildcard ('*') fields, against the alert stream of alerts.ts: about a quarter
 * of the alerts match some client, a few notifications a second at 20 alerts/s.
 */
export const demoTenants: Record<string, DemoRule[]> = {
  acme: [
    { severity: "CRITICAL", source: "*", name: "*", endpoints: ["webhook", "oncall@acme.example"] },
    { severity: "*", source: "payments", name: "latency-high", endpoints: ["webhook"] },
  ],
  globex: [
    { severity: "HIGH", source: "checkout", name: "*", endpoints: ["webhook"] },
    { severity: "*", source: "db", name: "disk-full", endpoints: ["ops@globex.example"] },
  ],
  initech: [
    { severity: "MEDIUM", source: "*", name: "error-rate", endpoints: ["webhook", "it@initech.example"] },
  ],
};

export interface DemoClient {
  id: string;
  name: string;
}

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

type Api = <T>(method: string, path: string, body?: unknown) => Promise<T>;

const pageLimit = 500; // the API's maximum
const pagesMax = 1000; // a bound on listing, far above any demo database

export async function seedDemo(
  ruleServiceUrl: string,
  adminToken: string,
  webhookSinkUrl: string,
): Promise<{ clients: DemoClient[]; created: number; total: number }> {
  const api = apiClient(ruleServiceUrl, adminToken);
  let created = 0;
  let total = 0;
  const ensure = async <T>(found: T | undefined, create: () => Promise<T>): Promise<T> => {
    total++;
    if (found !== undefined) return found;
    created++;
    return await create();
  };

  const existing = await listAll<DemoClient>(api, "/api/v1/clients");
  const clients: DemoClient[] = [];
  for (const [name, rules] of Object.entries(demoTenants)) {
    const client = await ensure(
      existing.find((c) => c.name === name),
      () => api<DemoClient>("POST", "/api/v1/clients", { name }),
    );
    clients.push({ id: client.id, name });
    const clientRules = await listAll<DemoRule & { id: string }>(api, `/api/v1/rules?client_id=${client.id}`);
    for (const { endpoints, ...fields } of rules) {
      const rule = await ensure(
        clientRules.find(
          (r) => r.severity === fields.severity && r.source === fields.source && r.name === fields.name,
        ),
        () => api<{ id: string }>("POST", "/api/v1/rules", { client_id: client.id, ...fields }),
      );
      const ruleEndpoints = await listAll<{ type: string; value: string }>(
        api,
        `/api/v1/rules/${rule.id}/endpoints`,
      );
      for (const target of endpoints) {
        const endpoint =
          target === "webhook"
            ? { type: "webhook", value: `${webhookSinkUrl}/hook/${name}` }
            : { type: "email", value: target };
        await ensure(
          ruleEndpoints.find((e) => e.type === endpoint.type && e.value === endpoint.value),
          () => api("POST", `/api/v1/rules/${rule.id}/endpoints`, endpoint),
        );
      }
    }
  }
  return { clients, created, total };
}

function apiClient(baseUrl: string, adminToken: string): Api {
  return async <T>(method: string, path: string, body?: unknown) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) {
      throw new SetupError(
        `demo seeding: ${method} ${path} answered ${response.status} ${await response.text()}`,
      );
    }
    return (await response.json()) as T;
  };
}

async function listAll<T>(api: Api, path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < pagesMax; page++) {
    const separator = path.includes("?") ? "&" : "?";
    const next = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
    const result: Page<T> = await api("GET", `${path}${separator}limit=${pageLimit}${next}`);
    items.push(...result.items);
    cursor = result.next_cursor;
    if (cursor === null) return items;
  }
  throw new SetupError(`demo seeding: ${path} has more than ${pagesMax} pages`);
}
