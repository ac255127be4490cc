/**
 * The rule-service as a real process (main.ts: its environment, Bun.serve's options), in the test
 * file's schema.
 */

import { uniqueName } from "../../harness/names.ts";
import type { TestSchema } from "../../harness/postgres.ts";
import { startStage, stopStage } from "../../harness/stages.ts";

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

export async function startRuleServiceProcess(
  db: TestSchema,
  env: Record<string, string> = {},
): Promise<RuleServiceProcess> {
  const adminToken = `admin-${crypto.randomUUID()}`;
  const stage = await startStage("rule-service", {
    POSTGRES_URL: db.url,
    ADMIN_TOKEN: adminToken,
    RULE_CHANGED_TOPIC: uniqueName("test-rule-process.rule.changed"),
    ...env,
  });
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
    async stop() {
      await stopStage(stage);
    },
  };
}
