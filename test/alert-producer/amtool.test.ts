/**
 * Debian's real amtool (installed by ./dev) against `main.ts serve`: the alerts Alertmanager accepts
 * are accepted here too, and written.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useTestSchema } from "../../harness/postgres.ts";
import { newTopic, type Server, startServer, stopServer, TopicReader } from "./helpers.ts";

const db = useTestSchema("producer_amtool");
let server: Server;
let reader: TopicReader;
let configDir: string;
let httpConfigPath: string;

beforeAll(async () => {
  const topic = await newTopic();
  server = await startServer(db, topic);
  reader = new TopicReader(topic);
  configDir = await mkdtemp(join(tmpdir(), "amtool-"));
  httpConfigPath = join(configDir, "http.yml");
  // amtool's --http.config.file is Prometheus's HTTP client config: the credential as a bearer token.
  await writeFile(httpConfigPath, `authorization:\n  credentials: ${server.credential.secret}\n`);
});

afterAll(async () => {
  await reader.close();
  await stopServer(server);
  await rm(configDir, { recursive: true, force: true });
});

async function amtool(...args: string[]): Promise<{ exitCode: number; output: string }> {
  const amtoolPath = Bun.which("amtool");
  expect(amtoolPath, "amtool is not installed: ./dev installs Debian's prometheus-alertmanager").toBeString();
  const child = Bun.spawn(
    [
      amtoolPath as string,
      `--alertmanager.url=${server.url}`,
      `--http.config.file=${httpConfigPath}`,
      "--no-version-check",
      ...args,
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, output: stdout + stderr };
}

test("amtool alert add: missing or odd severity, no instance nor job: exit 0 and written", async () => {
  const run = `amtool-${Date.now()}`;
  const cases = [
    { name: `${run}-no-severity`, labels: ["instance=db1"], severity: 2, source: "db1" },
    { name: `${run}-page`, labels: ["severity=page", "job=node"], severity: 4, source: "node" },
    { name: `${run}-odd`, labels: ["severity=none", "instance=db1"], severity: 2, source: "db1" },
    { name: `${run}-bare`, labels: ["severity=warning"], severity: 2, source: "unknown" },
  ];
  for (const { name, labels } of cases) {
    const result = await amtool("alert", "add", `alertname=${name}`, ...labels);
    expect({ name, ...result }).toEqual({ name, exitCode: 0, output: "" });
  }
  // amtool prints no id, so each is found by name among what was written (across partitions).
  const written = await reader.waitForMatching(cases.length + 1, (alert) => alert.name.startsWith(run), 3000);
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  expect(
    written
      .map(({ alert }) => ({ name: alert.name, severity: alert.severity, source: alert.source }))
      .sort(byName),
  ).toEqual(cases.map(({ name, severity, source }) => ({ name, severity, source })).sort(byName));
});

test("amtool alert add without alertname: a non-zero exit with the reason amtool can print", async () => {
  const result = await amtool("alert", "add", "severity=low", "instance=x", "--annotation=summary=s");
  // amtool requires an alertname itself; the server's own 400 is reached with an empty one.
  expect(result.exitCode).not.toBe(0);
  const empty = await amtool("alert", "add", "alertname=", "instance=x");
  expect(empty.exitCode).not.toBe(0);
  // amtool decodes the 400 body as a string and prints it.
  expect(empty.output).toContain("[400] postAlertsBadRequest  alerts[0].labels.alertname: must not be empty");
});
