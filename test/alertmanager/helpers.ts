/**
 * Shared by the Alertmanager API tests: clients and ingest credentials of their own (rows made the way
 * the rule service makes them), the ingest server with the Alertmanager API on a free port, and
 * Debian's real amtool pointed at it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newSecret } from "../../src/adapters/ingest-credentials.ts";
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
import { Producer } from "../../src/kafka/index.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { createStageMetrics } from "../../src/runtime/metrics.ts";
import { type Service, startService } from "../../src/runtime/service.ts";
import { createAlertmanagerApi } from "../../src/stages/alert-producer/alertmanager-api.ts";
import { createIngest } from "../../src/stages/alert-producer/ingest.ts";
import { brokers, quiet } from "../support/kafka.ts";
import { uniqueName } from "../support/names.ts";

/** Shared by every test file of the run (bun runs them in one process), so no file ends it; idle
 * connections close after a second. */
export const sql: Sql = connectPostgres({ connectionsMax: 4, idleTimeoutSeconds: 1 });

export interface TestClient {
  id: string;
  /** An ingest credential of the client's private scope. */
  secret: string;
  credentialId: string;
}

export async function newClient(): Promise<TestClient> {
  const [client] = await sql<
    { id: string }[]
  >`INSERT INTO clients (name) VALUES (${uniqueName("am-client")}) RETURNING id`;
  const clientId = (client as { id: string }).id;
  const { secret, digest, prefix } = newSecret("ik");
  const [credential] = await sql<{ id: string }[]>`
    INSERT INTO ingest_credentials (client_id, name, secret_hash, prefix)
    VALUES (${clientId}, 'amtool test', ${digest}, ${prefix}) RETURNING id`;
  return { id: clientId, secret, credentialId: (credential as { id: string }).id };
}

/** A credential of a new shared scope. */
export async function newSharedCredential(): Promise<string> {
  const name = uniqueName("am-shared").toLowerCase();
  const [scope] = await sql<{ id: string }[]>`INSERT INTO shared_scopes (name) VALUES (${name}) RETURNING id`;
  const { secret, digest, prefix } = newSecret("ik");
  await sql`
    INSERT INTO ingest_credentials (scope_id, name, secret_hash, prefix)
    VALUES (${(scope as { id: string }).id}, 'shared test', ${digest}, ${prefix})`;
  return secret;
}

export interface ApiServer {
  url: string;
  stop(): Promise<void>;
}

/** The ingest routes and the Alertmanager API on one port, as the alert-producer serves them. */
export async function startApiServer(): Promise<ApiServer> {
  const logger = createLogger("alertmanager-api-test");
  const metrics = createStageMetrics("alert-producer");
  const producer = new Producer({ brokers, clientId: "am-api-test", logger: quiet });
  const requestRate = { ratePerSecond: 1000, burst: 1000 };
  const ingest = createIngest({
    send: (records) => producer.send(records),
    topic: uniqueName("test-am-api"),
    bodyLimitBytes: 1024 * 1024,
    requestRate,
    sourceLabel: "instance",
    logger,
    metrics,
  });
  const api = createAlertmanagerApi({
    sql,
    logger,
    requestRate,
    postAlerts: ingest.routes["/api/v2/alerts"] as Parameters<typeof createAlertmanagerApi>[0]["postAlerts"],
    isReady: () => true,
  });
  const service: Service = startService({
    port: 0,
    registry: metrics.registry,
    isReady: () => true,
    routes: { ...ingest.routes, ...api.routes },
  });
  return {
    url: `http://127.0.0.1:${service.port}`,
    async stop() {
      await service.stop();
      await producer.close(1000);
    },
  };
}

export const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

export interface AmtoolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs amtool against `url`, authenticated with `secret` through an --http.config.file. */
export async function amtool(url: string, secret: string | undefined, args: string[]): Promise<AmtoolResult> {
  const dir = mkdtempSync(join(tmpdir(), "amtool-"));
  try {
    const httpConfig = join(dir, "http.yml");
    const flags = [`--alertmanager.url=${url}`];
    if (secret !== undefined) {
      writeFileSync(httpConfig, `authorization:\n  type: Bearer\n  credentials: ${secret}\n`);
      flags.push(`--http.config.file=${httpConfig}`);
    }
    // HOME without an amtool config file of the user's, so only these flags count.
    const child = Bun.spawn(["amtool", ...flags, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, USER: "amtool-test" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { exitCode, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A notification row for `clientId`, as the aggregator writes one. */
export async function insertNotification(
  clientId: string,
  alert: {
    alertId: string;
    severity: string;
    source: string;
    name: string;
    context: Record<string, string>;
    ruleIds?: string[];
  },
): Promise<void> {
  await sql`
    INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time)
    VALUES (${clientId}, ${alert.alertId}, ${alert.severity}, ${alert.source}, ${alert.name},
      ${sql.json(alert.context)}, ${alert.ruleIds ?? []}::uuid[], now())`;
}

/** A rule of `clientId` with one webhook endpoint; returns both ids. */
export async function insertRuleWithEndpoint(
  clientId: string,
): Promise<{ ruleId: string; endpointId: string }> {
  const [rule] = await sql<{ id: string }[]>`
    INSERT INTO rules (client_id, severity, source, name) VALUES (${clientId}, '*', ${uniqueName("src")}, '*')
    RETURNING id`;
  const ruleId = (rule as { id: string }).id;
  const [endpoint] = await sql<{ id: string }[]>`
    INSERT INTO endpoints (rule_id, client_id, type, value)
    VALUES (${ruleId}, ${clientId}, 'webhook', 'https://example.test/hook') RETURNING id`;
  return { ruleId, endpointId: (endpoint as { id: string }).id };
}
