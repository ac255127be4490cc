/**
 * The subcommands of `./dev` (the bash launcher installs what is missing, then runs this file).
 * Each command returns its exit code; a SetupError is printed as one line naming the fix.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirtyDatabaseError, migrate, readMigrations } from "../src/adapters/migrations.ts";
import { connectPostgres, type Sql } from "../src/adapters/postgres.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { buildBinary } from "./build.ts";
import { clusterBrokers, clusterReplicationFactor, ensureCluster, stopCluster } from "./cluster.ts";
import { ensureDatabase, ensureInfra } from "./infra.ts";
import { externalBrokers, kafkaPaths, stopBroker } from "./kafka.ts";
import { checkMigrations, rangeTable } from "./migration-check.ts";
import { capture, repoRoot, run, SetupError } from "./process.ts";
import { startStages } from "./stages.ts";

const bun = process.execPath; // the pinned Bun from node_modules that runs this file
const migrationsDir = join(repoRoot, "migrations");
const toolEnv = { ...process.env, PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env.PATH}` };

interface Command {
  usage: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  up: {
    usage: "up",
    summary: "infra + database + migrations + topics, then run until Ctrl-C (stops what it started)",
    run: up,
  },
  test: {
    usage: "test [bun test args]",
    summary: "infra + migrations + topics, then bun test; ends with 'N passed, N failed'",
    run: test,
  },
  infra: {
    usage: "infra",
    summary: "start Kafka if needed, check Postgres and Redis, create the database if missing",
    run: async () => {
      const broker = await ensureInfra();
      console.log(
        `infra: kafka at ${broker.brokers}, postgres at ${postgresLabel()}, redis at ${redisLabel()}`,
      );
      return 0;
    },
  },
  down: {
    usage: "down",
    summary: "stop the Kafka broker that ./dev started",
    run: async () => {
      console.log((await stopBroker()) ? "kafka: stopped" : "kafka: no broker started by ./dev is running");
      return 0;
    },
  },
  cluster: {
    usage: "cluster up|down",
    summary: "start (and create the topics on) or stop a three-broker cluster on 19092-19094",
    run: clusterCommand,
  },
  migrate: {
    usage: "migrate [up | down N | to N]",
    summary: "apply migrations/ (default: up to the newest), roll back N, or go to version N",
    run: migrateCommand,
  },
  "check-migrations": {
    usage: "check-migrations [dir]",
    summary: "reject duplicate or missing numbers, lone up or down files, numbers outside a service's range",
    run: async ([dir = "migrations"]) => {
      if (!existsSync(dir)) throw new SetupError(`no folder ${dir}: give a migrations folder`);
      const { versions, problems } = checkMigrations(dir);
      for (const problem of problems) console.error(`${dir}: ${problem}`);
      if (problems.length > 0) return 1;
      console.log(`check-migrations: ${dir} ok (${versions.length} migrations; ${rangeTable()})`);
      return 0;
    },
  },
  topics: {
    usage: "topics",
    summary: "create the Kafka topics (src/setup/topics.ts)",
    run: async () => {
      await createTopics();
      return 0;
    },
  },
  lint: {
    usage: "lint",
    summary: "biome check",
    run: (args) => run([bun, "x", "--bun", "biome", "check", ...args], toolEnv),
  },
  typecheck: {
    usage: "typecheck",
    summary: "tsc --noEmit",
    run: () => run([bun, "x", "--bun", "tsc", "--noEmit", "-p", "."], toolEnv),
  },
  generate: {
    usage: "generate",
    summary: "regenerate src/gen from proto/ (buf generate)",
    run: () => bufGenerate(repoRoot),
  },
  "check-generated": {
    usage: "check-generated",
    summary: "regenerate into a temp copy and fail if src/gen differs",
    run: checkGenerated,
  },
  bench: {
    usage: "bench NAME [args]",
    summary: "infra + migrations + topics, then run bench/NAME.ts",
    run: bench,
  },
  dlq: {
    usage: "dlq list|replay TOPIC [LIMIT] [TARGET]",
    summary: "show a dead-letter topic (reason, source, size) or replay it to its source topic",
    run: (args) => run([bun, join(repoRoot, "src/setup/dlq.ts"), ...args]),
  },
  build: {
    usage: "build",
    summary: "compile every stage into one executable: dist/alerting <stage>",
    run: buildBinary,
  },
  logs: { usage: "logs", summary: "follow the broker log", run: logs },
  chaos: {
    usage: "chaos [--cluster] [--group-by LABEL] [--alerts N] [--kills N] [--seed N]",
    summary:
      "kill -9 stages, restart Kafka and Postgres, pause Redis under an alert stream; report " +
      "(--cluster: two copies of each stage on ./dev cluster, kill -9 of a copy each and of a broker)",
    run: chaos,
  },
  help: { usage: "help", summary: "this list", run: async () => help() },
};

function help(): number {
  console.log("usage: ./dev COMMAND\n");
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length));
  for (const command of Object.values(commands))
    console.log(`  ${command.usage.padEnd(width)}  ${command.summary}`);
  console.log(
    "\nenv: KAFKA_BROKERS (set: use that broker, start none), POSTGRES_URL, REDIS_URL, " +
      "TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR",
  );
  return 0;
}

async function up(): Promise<number> {
  const stopRequested = waitForStopSignal(); // listen from the start: Ctrl-C during startup still cleans up
  const broker = await ensureInfra();
  const version = await migrateTo(undefined);
  await createTopics();
  const stages = await startStages();

  console.log("\nthe infrastructure is up:");
  const kafkaOwner = broker.pid
    ? `pid ${broker.pid}, ${broker.startedNow ? "started now" : "already running"}`
    : "external";
  console.log(`  kafka     ${broker.brokers} (${kafkaOwner}; ./dev logs)`);
  console.log(`  postgres  ${postgresLabel()} (schema version ${version})`);
  console.log(`  redis     ${redisLabel()}`);
  console.log(
    `  stages    ${stages.map((s) => s.name).join(", ") || "none yet (scripts/stages.ts starts them)"}`,
  );
  console.log(broker.startedNow ? "Ctrl-C stops the stages and the broker." : "Ctrl-C stops the stages.");

  await stopRequested;
  for (const stage of stages.reverse()) await stage.stop();
  if (broker.startedNow) await stopBroker();
  console.log("stopped");
  return 0;
}

function waitForStopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 60_000); // signal listeners alone do not keep Bun running
    const stop = () => {
      clearInterval(keepAlive);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}

async function test(args: string[]): Promise<number> {
  await ensureInfra();
  await migrateTo(undefined);
  await createTopics();

  // bun test prints its summary on stderr: pass it through and keep the tail to count from.
  // Integration tests wait on real services; bun's 5 s default per test is too tight on 2 cores.
  const child = Bun.spawn([bun, "test", "--timeout", "120000", ...args], {
    cwd: repoRoot,
    stdio: ["inherit", "inherit", "pipe"],
  });
  const decoder = new TextDecoder();
  let tail = "";
  for await (const chunk of child.stderr) {
    process.stderr.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-65_536);
  }
  const exitCode = await child.exited;

  const count = (word: string) => {
    const matches = [...Bun.stripANSI(tail).matchAll(new RegExp(`^\\s*(\\d+) ${word}$`, "gm"))];
    return Number(matches.at(-1)?.[1] ?? 0);
  };
  const [passed, failed, skipped] = [count("pass"), count("fail"), count("skip")];
  console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
  if (passed + failed + skipped === 0) {
    console.error("no tests ran: bun test found no *.test.ts files under the given paths");
    return exitCode || 1;
  }
  return exitCode;
}

async function clusterCommand([action, ...rest]: string[]): Promise<number> {
  if ((action !== "up" && action !== "down") || rest.length > 0)
    throw new SetupError(`usage: ./dev ${commands.cluster?.usage} (got: ${[action, ...rest].join(" ")})`);
  if (action === "down") {
    const stopped = await stopCluster();
    console.log(
      stopped.length > 0 ? `cluster: stopped node ${stopped.join(", ")}` : "cluster: no node is running",
    );
    return 0;
  }
  const cluster = await ensureCluster();
  const started = cluster.startedNodeIds;
  console.log(
    started.length > 0
      ? `cluster: node ${started.join(", ")} started, all answering after ${(cluster.startedInMs / 1000).toFixed(1)} s`
      : "cluster: already running",
  );
  const env = clusterEnv();
  await createTopics(env);
  console.log(
    "\nto point ./dev and the stages at it (./dev cluster down stops it):\n" +
      `  export ${Object.entries(env)
        .map(([name, value]) => `${name}=${value}`)
        .join(" ")}`,
  );
  return 0;
}

/** What points ./dev, the stages and the topics at the cluster. */
function clusterEnv(): Record<string, string> {
  return { KAFKA_BROKERS: clusterBrokers, TOPIC_REPLICATION_FACTOR: String(clusterReplicationFactor) };
}

/**
 * `./dev chaos`: its own process (harness/chaos.ts), which loads the Kafka client and the test
 * harness no other command needs. With --cluster it runs against the cluster (started here if
 * needed, stopped again afterwards then): every Kafka client reads KAFKA_BROKERS when it starts.
 * The run handles Ctrl-C itself (stops the stages, restores the services): wait for it.
 */
async function chaos(args: string[]): Promise<number> {
  process.on("SIGINT", () => {});
  const script = [bun, join(repoRoot, "harness/chaos.ts"), ...args];
  if (!args.includes("--cluster") || args.includes("--help") || args.includes("-h")) return await run(script);
  const cluster = await ensureCluster();
  try {
    return await run(script, { ...process.env, ...clusterEnv() });
  } finally {
    if (cluster.startedNow) {
      await stopCluster();
      console.log("cluster: stopped (it was started for this run)");
    }
  }
}

async function migrateCommand(args: string[]): Promise<number> {
  const [direction = "up", count] = args;
  const steps = Number(count);
  const badUsage = direction === "up" ? args.length > 1 : !Number.isInteger(steps) || steps < 0;
  if (badUsage || !["up", "down", "to"].includes(direction)) {
    throw new SetupError(`usage: ./dev ${commands.migrate?.usage} (got: ${args.join(" ")})`);
  }
  if (direction === "up") await migrateTo(undefined);
  else if (direction === "to") await migrateTo(steps);
  else await migrateTo(-steps);
  return 0;
}

/**
 * Migrates the database of POSTGRES_URL to `target` (undefined: newest; negative: that many versions
 * below the current one) and returns the version it ends at.
 */
async function migrateTo(target: number | undefined): Promise<number> {
  await ensureDatabase(infraUrls.postgresUrl);
  const sql = connectPostgres({ connectionsMax: 1, idleTimeoutSeconds: 1 });
  try {
    const versions = [0, ...readMigrations(migrationsDir).map((m) => m.version)];
    let goal = target;
    if (goal !== undefined && goal < 0) {
      const index = versions.indexOf(await schemaVersion(sql));
      goal = versions[Math.max(0, index + goal)];
    }
    const applied = await migrate(sql, migrationsDir, goal);
    const now = await schemaVersion(sql);
    const ran = applied.length > 0 ? `ran ${applied.join(", ")}; now ` : "";
    console.log(`migrations: ${ran}at version ${now}`);
    return now;
  } catch (error) {
    if (error instanceof DirtyDatabaseError) throw new SetupError(error.message);
    throw error;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function schemaVersion(sql: Sql): Promise<number> {
  const [table] = await sql`SELECT to_regclass('schema_migrations') AS name`;
  if (!table?.name) return 0;
  const [row] = await sql`SELECT version FROM schema_migrations LIMIT 1`;
  return Number(row?.version ?? 0);
}

async function createTopics(env: Record<string, string> = {}): Promise<void> {
  const exitCode = await run([bun, join(repoRoot, "src/setup/topics.ts")], { ...process.env, ...env });
  if (exitCode !== 0)
    throw new SetupError(`topics: creating the topics failed (exit ${exitCode}): see above`);
}

async function bufGenerate(dir: string): Promise<number> {
  const child = Bun.spawn([bun, "x", "--bun", "buf", "generate"], {
    cwd: dir,
    env: toolEnv,
    stdio: ["inherit", "inherit", "inherit"],
  });
  return await child.exited;
}

async function checkGenerated(): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), "alerting-gen-"));
  try {
    for (const entry of ["proto", "buf.yaml", "buf.gen.yaml"]) {
      await cp(join(repoRoot, entry), join(scratch, entry), { recursive: true });
    }
    const generated = await bufGenerate(scratch);
    if (generated !== 0) return generated;
    const { exitCode, output } = await capture([
      "diff",
      "-r",
      join(scratch, "src/gen"),
      join(repoRoot, "src/gen"),
    ]);
    if (exitCode === 0) {
      console.log("check-generated: src/gen matches proto/");
      return 0;
    }
    console.error(`${output}\nsrc/gen differs from what proto/ generates: run ./dev generate`);
    return 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function bench([name, ...args]: string[]): Promise<number> {
  const available = readdirSync(join(repoRoot, "bench"))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.slice(0, -3));
  if (!name || !available.includes(name)) {
    throw new SetupError(
      `usage: ./dev bench NAME, NAME one of: ${available.join(", ") || "(no bench/*.ts yet)"}`,
    );
  }
  // A bench on a fresh machine needs what the tests need: the broker, the schema and the topics.
  await ensureInfra();
  await migrateTo(undefined);
  await createTopics();
  return await run([bun, join(repoRoot, "bench", `${name}.ts`), ...args]);
}

async function logs(): Promise<number> {
  if (externalBrokers())
    throw new SetupError("KAFKA_BROKERS is set: that broker's logs are wherever it runs");
  if (!existsSync(kafkaPaths.serverLog)) throw new SetupError("no broker log yet: run ./dev infra");
  return await run(["tail", "-n", "100", "-F", kafkaPaths.serverLog]);
}

function postgresLabel(): string {
  const url = new URL(infraUrls.postgresUrl);
  return `${url.host}${url.pathname}`; // no user or password on screen
}

function redisLabel(): string {
  return new URL(infraUrls.redisUrl).host;
}

async function main(): Promise<number> {
  const [name = "help", ...args] = process.argv.slice(2);
  const command = commands[name === "-h" || name === "--help" ? "help" : name];
  if (!command) {
    console.error(`unknown command '${name}': ./dev help lists them`);
    return 2;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (!(error instanceof SetupError)) throw error;
    console.error(`dev ${name}: ${error.message}`);
    return 1;
  }
}

process.exit(await main());
