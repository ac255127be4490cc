/**
 * Shared by the Alertmanager API tests: clients and ingest credentials of their own (issued by the rule
 * service's store functions), the alert-producer's `serve` process on a free port, and Debian's real
 * amtool pointed at it.
 */
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientWithCredential, issueCredential } from "../../harness/ingest-credentials.ts";
import { uniqueName } from "../../harness/names.ts";
import type { TestSchema } from "../../harness/postgres.ts";
import { startStage, stopStage } from "../../harness/stages.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import { mainPath, newTopic } from "../alert-producer/helpers.ts";

export interface TestClient {
  id: string;
  /** An ingest credential of the client's private scope. */
  secret: string;
  credentialId: string;
}

export async function newClient(sql: Sql): Promise<TestClient> {
  const { clientId, credential } = await clientWithCredential(sql);
  return { id: clientId, secret: credential.secret, credentialId: credential.id };
}

/** A credential of a new shared scope. */
export async function newSharedCredential(sql: Sql): Promise<string> {
  const name = uniqueName("am-shared").toLowerCase();
  const [scope] = await sql<{ id: string }[]>`INSERT INTO shared_scopes (name) VALUES (${name}) RETURNING id`;
  return (await issueCredential(sql, { scopeId: (scope as { id: string }).id })).secret;
}

export interface ApiServer {
  url: string;
  stop(): Promise<void>;
}

/** `alert-producer serve` as a real process: ingest and the Alertmanager API on one port. */
export async function startApiServer(db: TestSchema): Promise<ApiServer> {
  const env = { OUTPUT_TOPIC: await newTopic(1), POSTGRES_URL: db.url };
  const stage = await startStage("alert-producer", env, [process.execPath, mainPath, "serve"]);
  return {
    url: `http://127.0.0.1:${stage.httpPort}`,
    async stop() {
      await stopStage(stage);
    },
  };
}

/**
 * A test file's API server and two clients of its own, A and B, in the file's schema. Call it at the
 * top of the file: the objects it returns are filled in before the file's tests run, and the server
 * is stopped after them.
 */
export function useServerWithTwoClients(db: TestSchema): {
  server: ApiServer;
  clientA: TestClient;
  clientB: TestClient;
} {
  const server: ApiServer = { url: "", stop: async () => {} };
  const clientA: TestClient = { id: "", secret: "", credentialId: "" };
  const clientB: TestClient = { id: "", secret: "", credentialId: "" };
  beforeAll(async () => {
    Object.assign(server, await startApiServer(db));
    Object.assign(clientA, await newClient(db.sql));
    Object.assign(clientB, await newClient(db.sql));
  });
  afterAll(() => server.stop());
  return { server, clientA, clientB };
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
  sql: Sql,
  clientId: string,
  alert: {
    alertId: string;
    severity: string;
    source: string;
    name: string;
    context: Record<string, string>;
    ruleIds?: string[];
    createdAt?: Date;
    /** An Alertmanager alert's lifecycle state (alert_states), as the aggregator keeps it. */
    state?: "firing" | "resolved";
    /** Which of the client's routes the row is for (src/core/grouping.ts); "" when absent. */
    route?: string;
  },
): Promise<void> {
  const createdAt = alert.createdAt ?? new Date();
  await sql`
    INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time,
      created_at, episode, route)
    VALUES (${clientId}, ${alert.alertId}, ${alert.severity}, ${alert.source}, ${alert.name},
      ${sql.json(alert.context)}, ${alert.ruleIds ?? []}::uuid[], ${createdAt}, ${createdAt},
      ${alert.state ? 1 : 0}, ${alert.route ?? ""})`;
  if (alert.state === undefined) return;
  await sql`
    INSERT INTO alert_states (client_id, scope, alert_key, route, episode, state, episode_started_at, last_event_at,
      last_seen_at, last_notified_at)
    VALUES (${clientId}, '', ${alert.alertId}, ${alert.route ?? ""}, 1, ${alert.state}, ${createdAt}, now(), now(),
      ${createdAt})`;
}

/** A rule of `clientId` with one webhook endpoint; returns both ids. */
export async function insertRuleWithEndpoint(
  sql: Sql,
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
