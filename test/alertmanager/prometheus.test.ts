/**
 * Debian's real Prometheus pointed at our ingest as its Alertmanager (alertmanagers static config,
 * the client's ingest credential as a bearer token), through the whole pipeline (every stage its own
 * process) to a webhook: an alert that keeps firing is notified once however often Prometheus re-sends
 * it, and one that stops firing is notified once firing and once resolved.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";

/** How long the second rule fires before its expression turns empty. */
const stopsAfterMs = 15_000;

const db = useTestSchema("alertmanager_prometheus");
let pipeline: Pipeline;
let clientId = "";
let prometheus: Subprocess | undefined;
const dir = mkdtempSync(join(tmpdir(), "prometheus-"));
let prometheusLog = "";

beforeAll(async () => {
  pipeline = await startPipeline({ ingest: true, postgresUrl: db.url });
  clientId = (await pipeline.createClientWithRule("*")).clientId;
  const credential = await pipeline.issueIngestCredential({ client_id: clientId });
  expect(await pipeline.awaitRulesApplied()).toBe(true);

  const ingest = new URL(pipeline.ingestUrl());
  const stopAtS = Math.floor((Date.now() + stopsAfterMs) / 1000);
  const labels = `      labels:\n        severity: high\n        instance: ${pipeline.source}\n`;
  writeFileSync(
    join(dir, "rules.yml"),
    `groups:\n- name: test\n  interval: 1s\n  rules:\n` +
      `    - alert: PromFires\n      expr: vector(1)\n${labels}` +
      `    - alert: PromStops\n      expr: vector(time()) < ${stopAtS}\n${labels}`,
  );
  writeFileSync(
    join(dir, "prometheus.yml"),
    `global:\n  evaluation_interval: 1s\n` +
      `rule_files:\n  - ${join(dir, "rules.yml")}\n` +
      `alerting:\n  alertmanagers:\n    - api_version: v2\n      authorization:\n        type: Bearer\n` +
      `        credentials: ${credential.secret}\n      static_configs:\n        - targets: ["${ingest.host}"]\n`,
  );
  const port = await freePort();
  prometheus = Bun.spawn(
    [
      "prometheus",
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Re-send every second (default 1 m): many re-sends within the test, each to be deduplicated.
      "--rules.alert.resend-delay=1s",
      "--log.level=warn",
    ],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  void new Response(prometheus.stderr as ReadableStream).text().then((text) => {
    prometheusLog = text;
  });
}, 90_000);

afterAll(async () => {
  prometheus?.kill("SIGTERM");
  await prometheus?.exited;
  rmSync(dir, { recursive: true, force: true });
  const exitCodes = await pipeline.stop();
  expect(exitCodes.every((code) => code === 0)).toBe(true);
});

async function freePort(): Promise<number> {
  const server = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = server.port as number;
  await server.stop(true);
  return port;
}

interface Hook {
  name: string;
  kind: string;
  status: string;
}

const hooks = (): Hook[] =>
  pipeline.sink.received
    .filter((r) => r.path === `/hook/${clientId}`)
    .map((r) => JSON.parse(r.body) as Hook)
    .map(({ name, kind, status }) => ({ name, kind, status }));

const summary = () =>
  hooks()
    .map((h) => `${h.name} ${h.kind}`)
    .sort();

test("Prometheus as the sender: firing once per alert, resolved once when its rule stops firing", async () => {
  const fired = await eventually(
    () => summary().includes("PromFires firing") && summary().includes("PromStops firing"),
    30_000,
  );
  expect({ fired, prometheusLog }).toMatchObject({ fired: true });
  const resolved = await eventually(() => summary().includes("PromStops resolved"), stopsAfterMs + 30_000);
  expect({ resolved, summary: summary() }).toMatchObject({ resolved: true });
  // Prometheus keeps re-sending both (every second): nothing more may arrive.
  await Bun.sleep(4000);
  expect(summary()).toEqual(["PromFires firing", "PromStops firing", "PromStops resolved"]);
  const rows = await pipeline.sql<{ name: string; episode: number; kind: string; status: string }[]>`
    SELECT name, episode, kind, status FROM notifications WHERE client_id = ${clientId} ORDER BY name, id`;
  expect([...rows]).toEqual([
    { name: "PromFires", episode: 1, kind: "firing", status: "SENT" },
    { name: "PromStops", episode: 1, kind: "firing", status: "SENT" },
    { name: "PromStops", episode: 1, kind: "resolved", status: "SENT" },
  ]);
}, 120_000);
