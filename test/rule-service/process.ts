/**
 * The rule-service as a real process (main.ts: its environment, Bun.serve's options), in a schema of
 * its own: the process runs the outbox relay, which must not drain the shared outbox.
 */

import { uniqueName } from "../../harness/names.ts";
import { type StageProcess, startStage, stopStage } from "../../harness/stages.ts";
import { migrate } from "../../src/adapters/migrations.ts";
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
import { infraUrls } from "../../src/runtime/env.ts";

export interface RuleServiceProcess {
  url: string;
  adminToken: string;
  /** JSON in and out, with the admin token unless `token` is given. */
  call(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  ): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export async function startRuleServiceProcess(env: Record<string, string> = {}): Promise<RuleServiceProcess> {
  const schema = uniqueName("rule_process").replaceAll("-", "_");
  const schemaUrl = new URL(infraUrls.postgresUrl);
  schemaUrl.searchParams.set("search_path", schema);
  const admin = connectPostgres({ idleTimeoutSeconds: 1 });
  const sql: Sql = connectPostgres({ url: schemaUrl.toString(), idleTimeoutSeconds: 1 });
  const adminToken = `admin-${crypto.randomUUID()}`;
  let stage: StageProcess | undefined;
  const stop = async () => {
    if (stage) await stopStage(stage);
    await sql.end();
    await admin.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  };
  try {
    await admin.unsafe(`CREATE SCHEMA ${schema}`);
    await migrate(sql, "migrations");
    stage = await startStage("rule-service", {
      POSTGRES_URL: schemaUrl.toString(),
      ADMIN_TOKEN: adminToken,
      RULE_CHANGED_TOPIC: uniqueName("test-rule-process.rule.changed"),
      ...env,
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const url = `http://127.0.0.1:${stage.httpPort}`;
  return {
    url,
    adminToken,
    async call(method, path, body, token = adminToken) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    stop,
  };
}
