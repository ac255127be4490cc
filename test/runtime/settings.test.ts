/**
 * Every stage reads all its settings before it starts anything: a bad one ends the process
 * with exit code 2 and exactly one line, naming the variable and the reason. Real processes, as an
 * operator would start them; none of these gets as far as connecting to Kafka, Postgres or Redis.
 */
import { expect, test } from "bun:test";

const repoRoot = new URL("../..", import.meta.url).pathname;

/** Settings a developer's shell may hold that would change which check fails first. */
const cleared = Object.fromEntries(
  [
    "LOG_LEVEL",
    "LIBRDKAFKA_PATH",
    "BATCH_SIZE_MAX",
    "COMMIT_INTERVAL_MS",
    "SMTP_HOST",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SMTP_SECURITY",
    "SSRF_ALLOW_CIDRS",
    "TOPIC_PARTITIONS",
    "TOPIC_REPLICATION_FACTOR",
  ].map((name) => [name, ""]),
);

async function run(
  command: string[],
  env: Record<string, string>,
): Promise<{ exitCode: number; lines: string[]; stderr: string }> {
  const child = Bun.spawn(command, {
    cwd: repoRoot,
    env: { ...process.env, ...cleared, HTTP_PORT: "0", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]).finally(() => clearTimeout(timer));
  return { exitCode, lines: stdout.split("\n").filter((line) => line !== ""), stderr };
}

/** `setup`: a one-shot command of src/setup rather than a stage of src/stages. */
const badSettings: {
  stage: string;
  setup?: boolean;
  args?: string[];
  env: Record<string, string>;
  message: string;
}[] = [
  {
    stage: "evaluator",
    env: { RULES_POLL_INTERVAL_MS: "fast" },
    message: 'RULES_POLL_INTERVAL_MS: must be an integer, got "fast"',
  },
  {
    stage: "aggregator",
    env: { PROCESS_CONCURRENCY_MAX: "0" },
    message: "PROCESS_CONCURRENCY_MAX: must be within 1..16, got 0",
  },
  {
    stage: "sender",
    env: { SMTP_HOST: "127.0.0.1", SMTP_SECURITY: "tsl" },
    message: 'SMTP_SECURITY: must be one of tls, starttls, none, got "tsl"',
  },
  {
    stage: "sender",
    env: { SMTP_HOST: "127.0.0.1", SMTP_USER: "alerts" },
    message: "SMTP_PASSWORD: must be set when SMTP_USER is",
  },
  {
    stage: "sender",
    env: { SSRF_ALLOW_CIDRS: "10.0.0.0/33" },
    message: "SSRF_ALLOW_CIDRS: invalid CIDR: 10.0.0.0/33",
  },
  {
    stage: "sender",
    env: { GROUP_BODY_BYTES_MAX: "4096" },
    message: "GROUP_BODY_BYTES_MAX: must be within 8192..67108864, got 4096",
  },
  {
    stage: "sender",
    env: { EXTERNAL_URL: `https://alerts.example/${"x".repeat(1024)}` },
    message: "EXTERNAL_URL: must be at most 1024 characters, got 1047",
  },
  {
    stage: "sender",
    env: { LEASE_MS: "5000", HTTP_TIMEOUT_MS: "3000" },
    message: "LEASE_MS: must be at least twice the longest delivery timeout (3000 ms), got 5000",
  },
  {
    stage: "rule-updater",
    env: { SNAPSHOT_WATCH_INTERVAL_MS: "10" },
    message: "SNAPSHOT_WATCH_INTERVAL_MS: must be within 50..60000, got 10",
  },
  // The settings every consuming stage shares (src/runtime/stage.ts).
  {
    stage: "rule-updater",
    env: { LOG_LEVEL: "verbose" },
    message: 'LOG_LEVEL: must be one of debug, info, warn, error, got "verbose"',
  },
  {
    stage: "evaluator",
    env: { BATCH_SIZE_MAX: "0" },
    message: "BATCH_SIZE_MAX: must be within 1..100000, got 0",
  },
  {
    stage: "sender",
    env: { COMMIT_INTERVAL_MS: "-1" },
    message: "COMMIT_INTERVAL_MS: must be within 0..60000, got -1",
  },
  {
    stage: "aggregator",
    env: { LIBRDKAFKA_PATH: "/nonexistent/librdkafka.so.1" },
    message: 'LIBRDKAFKA_PATH: cannot load librdkafka from "/nonexistent/librdkafka.so.1"',
  },
  // The alert-producer and the rule-service read their settings the same way.
  {
    stage: "alert-producer",
    args: ["serve"],
    env: { LOG_LEVEL: "verbose" },
    message: 'LOG_LEVEL: must be one of debug, info, warn, error, got "verbose"',
  },
  {
    stage: "alert-producer",
    args: ["serve"],
    env: { INGEST_RATE_BURST: "0" },
    message: "INGEST_RATE_BURST: must be within 1..1000000, got 0",
  },
  {
    stage: "rule-service",
    env: { ADMIN_TOKEN: "", LOG_LEVEL: "verbose" },
    message: 'LOG_LEVEL: must be one of debug, info, warn, error, got "verbose"',
  },
  {
    stage: "rule-service",
    env: { ADMIN_TOKEN: "x".repeat(31) },
    message: "ADMIN_TOKEN: is 31 characters: set it to a secret of at least 32 characters",
  },
  {
    stage: "rule-service",
    env: { ADMIN_TOKEN: "x".repeat(32), API_RATE_BURST: "0" },
    message: "API_RATE_BURST: must be within 1..1000000, got 0",
  },
  // The one-shot setup commands, too.
  {
    stage: "topics",
    setup: true,
    env: { TOPIC_PARTITIONS: "many" },
    message: 'TOPIC_PARTITIONS: must be an integer, got "many"',
  },
  {
    stage: "topics",
    setup: true,
    env: { TOPIC_REPLICATION_FACTOR: "0" },
    message: "TOPIC_REPLICATION_FACTOR: must be within 1..16, got 0",
  },
  {
    stage: "dlq",
    setup: true,
    args: ["list", "alerts.new.dlq"],
    env: { LIBRDKAFKA_PATH: "/nonexistent/librdkafka.so.1" },
    message: 'LIBRDKAFKA_PATH: cannot load librdkafka from "/nonexistent/librdkafka.so.1"',
  },
];

test.each(badSettings)(
  "$stage with $env exits 2 with one line naming the variable",
  async ({ stage, setup = false, args = [], env, message }) => {
    const path = setup ? `src/setup/${stage}.ts` : `src/stages/${stage}/main.ts`;
    const { exitCode, lines, stderr } = await run([process.execPath, path, ...args], env);
    expect({ exitCode, stderr, lineCount: lines.length }).toEqual({ exitCode: 2, stderr: "", lineCount: 1 });
    const line = JSON.parse(lines[0] as string) as { level: string; component: string; message: string };
    expect({ level: line.level, component: line.component }).toEqual({ level: "error", component: stage });
    expect(line.message.startsWith(message)).toBe(true);
  },
);

test("an empty infrastructure variable means its default, as every setting does", async () => {
  const { exitCode, lines } = await run(
    [process.execPath, "-e", 'console.log(JSON.stringify((await import("./src/runtime/env.ts")).infraUrls))'],
    { KAFKA_BROKERS: "", POSTGRES_URL: "", REDIS_URL: "" },
  );
  expect(exitCode).toBe(0);
  expect(JSON.parse(lines[0] as string)).toEqual({
    kafkaBrokers: "127.0.0.1:9092",
    postgresUrl: "postgres://postgres@127.0.0.1:5432/alerting",
    redisUrl: "redis://127.0.0.1:6379",
  });
});
