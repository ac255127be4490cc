/**
 * The demo's tenants, created through the rule-service API with the admin token. Idempotent: a
 * client is found by name, a rule by its three fields, an endpoint by type and value, the shared scope
 * by name and its grants by client, and only what is missing is created, so every `./dev up` reuses
 * what the previous one made. The demo's alerts come in through ingest under that shared scope (one
 * monitoring system watched by all three tenants), with an ingest credential issued afresh per run:
 * the previous runs' demo credentials are revoked first, so they never pile up.
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

/** The shared scope the demo's alerts come in under, granted to every demo tenant. */
export const demoScopeName = "demo";
const demoCredentialName = "demo alerts";

/** The run's ingest credential: its secret is shown once, like the admin token. */
export interface DemoCredential {
  scope: string;
  secret: string;
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
): Promise<{ clients: DemoClient[]; credential: DemoCredential; created: number; total: number }> {
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
  const scopes = await listAll<{ id: string; name: string }>(api, "/api/v1/scopes");
  const scope = await ensure(
    scopes.find((s) => s.name === demoScopeName),
    () => api<{ id: string; name: string }>("POST", "/api/v1/scopes", { name: demoScopeName }),
  );
  for (const client of clients) {
    const granted = await listAll<{ id: string }>(api, `/api/v1/scopes?client_id=${client.id}`);
    await ensure(
      granted.find((s) => s.id === scope.id),
      () => api("POST", `/api/v1/scopes/${scope.id}/grants`, { client_id: client.id }),
    );
  }
  const credentials = await listAll<{ id: string; name: string; revoked_at: string | null }>(
    api,
    `/api/v1/ingest-credentials?scope_id=${scope.id}`,
  );
  for (const old of credentials.filter((c) => c.name === demoCredentialName && c.revoked_at === null)) {
    await api("DELETE", `/api/v1/ingest-credentials/${old.id}`);
  }
  const credential = await api<DemoCredential>("POST", "/api/v1/ingest-credentials", {
    name: demoCredentialName,
    scope_id: scope.id,
  });
  return { clients, credential: { scope: credential.scope, secret: credential.secret }, created, total };
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
    return (response.status === 204 ? undefined : await response.json()) as T;
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
