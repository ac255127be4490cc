import type { TestSchema } from "../../harness/postgres.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import { createRuleServiceApp, type RuleServiceOptions } from "../../src/stages/rule-service/app.ts";

export const adminToken = `admin-${crypto.randomUUID()}`;

export interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  body: any;
  headers: Headers;
}

export interface CallOptions {
  body?: unknown;
  /** Sent verbatim instead of JSON-encoding `body`. */
  rawBody?: BodyInit;
  /** null sends no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
}

export interface Service {
  sql: Sql;
  url: URL;
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
  stop(): Promise<void>;
}

/**
 * An in-process rule service on an ephemeral port, against the test file's schema; `more` adds
 * options such as the console's parts.
 */
export function startService(db: TestSchema, more: Partial<RuleServiceOptions> = {}): Service {
  const { sql } = db;
  const server = Bun.serve({ port: 0, ...createRuleServiceApp({ sql, adminToken, ...more }) });
  return {
    sql,
    url: server.url,
    async call(method, path, options = {}) {
      const token = options.token === undefined ? adminToken : options.token;
      const headers: Record<string, string> = { ...options.headers };
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body = options.rawBody;
      if (body === undefined && options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["content-type"] ??= "application/json";
      }
      const response = await fetch(new URL(path, server.url), { method, headers, body });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
    },
    async stop() {
      await server.stop(true);
    },
  };
}

/**
 * Two grouped rows of one group, as the sender leaves them while a window is in flight: both stored
 * RECEIVED without a send, `inFlight` a member of the SENDING send `sendId`, `waiting` in none.
 */
export async function insertWindowInFlight(
  sql: Sql,
  clientId: string,
): Promise<{ waiting: { id: string }; inFlight: { id: string }; sendId: string }> {
  const waiting = await insertNotification(sql, clientId, "RECEIVED");
  const inFlight = await insertNotification(sql, clientId, "RECEIVED");
  const key = crypto.randomUUID().replaceAll("-", "");
  await sql`
    INSERT INTO notification_groups (group_key, client_id, labels, group_interval_ms, group_alerts_max, next_due_at)
    VALUES (${key}, ${clientId}, ${sql.json({ source: "db" })}, 1000, 100, now())`;
  await sql`
    UPDATE notifications SET group_key = ${key}, group_due_at = now() WHERE id IN (${waiting.id}, ${inFlight.id})`;
  const [send] = await sql<{ id: string }[]>`
    INSERT INTO group_sends (client_id, group_key, window_no, alerts, status, member_ids, members_fixed_at)
    VALUES (${clientId}, ${key}, 0, 1, 'SENDING', ${`{${inFlight.id}}`}::bigint[], now()) RETURNING id::text`;
  return { waiting, inFlight, sendId: (send as { id: string }).id };
}

export interface TestClient {
  id: string;
  name: string;
  key: string;
}

/** Every test makes its own clients; shared tables are never truncated. */
export async function createClient(service: Service): Promise<TestClient> {
  const name = `test-${crypto.randomUUID()}`;
  const client = await service.call("POST", "/api/v1/clients", { body: { name } });
  if (client.status !== 201) throw new Error(`create client: ${client.status}`);
  const key = await service.call("POST", `/api/v1/clients/${client.body.id}/api-keys`);
  if (key.status !== 201) throw new Error(`create key: ${key.status}`);
  return { id: client.body.id, name, key: key.body.key };
}

// biome-ignore lint/suspicious/noExplicitAny: returns the rule JSON
export async function createRule(service: Service, client: TestClient, fields: object = {}): Promise<any> {
  const body = { severity: "HIGH", source: `src-${crypto.randomUUID()}`, name: "cpu", ...fields };
  const reply = await service.call("POST", "/api/v1/rules", { body, token: client.key });
  if (reply.status !== 201) throw new Error(`create rule: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

/** Notifications are written by the pipeline, not this API; tests insert them directly. */
export async function insertNotification(
  sql: Sql,
  clientId: string,
  status = "SENT",
): Promise<{ id: string; deliveryIds: string[] }> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time, status)
    VALUES (${clientId}, ${crypto.randomUUID()}, 'HIGH', 'db', 'cpu', ${sql.json({ host: "h1" })},
            ${sql.array([crypto.randomUUID()])}::uuid[], now(), ${status})
    RETURNING id`;
  if (!row) throw new Error("insert notification");
  const deliveries = await sql<{ id: string }[]>`
    INSERT INTO deliveries (notification_id, endpoint_id, channel, outcome, http_status, latency_ms, error)
    VALUES (${row.id}, ${crypto.randomUUID()}, 'webhook', 'RETRYABLE', 503, 12, 'unavailable'),
           (${row.id}, ${crypto.randomUUID()}, 'webhook', 'SUCCESS', 200, 8, NULL)
    RETURNING id`;
  return { id: row.id, deliveryIds: deliveries.map((d) => d.id) };
}
