/**
 * The development Kafka broker: one KRaft node run from Maven Central jars, no Docker.
 *
 * Jars are copied once per pom into a cache outside the repo (shared by every checkout); the data,
 * logs and pid file live in the repo's git-ignored .run/kafka. When KAFKA_BROKERS is set, the broker
 * is someone else's: we only check that it answers.
 */

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { capture, repoRoot, requireCommand, SetupError } from "./process.ts";

const brokerHost = "127.0.0.1";
const brokerPort = 9092;
const controllerPort = 9093;
export const ownBrokerAddress = `${brokerHost}:${brokerPort}`;

const startDeadlineMs = 90_000;
const stopDeadlineMs = 30_000;
// Two cores and 24 GiB per machine: a fixed 1 GiB heap leaves room for Postgres, Redis and the stages.
const jvmOptions = ["-Xms1g", "-Xmx1g", "-XX:+UseG1GC"];

const pomPath = join(repoRoot, "infra/kafka/pom.xml");
const runDir = join(repoRoot, ".run/kafka");
export const kafkaPaths = {
  dataDir: join(runDir, "data"),
  logsDir: join(runDir, "logs"),
  serverLog: join(runDir, "logs/server.log"),
  consoleLog: join(runDir, "logs/console.log"),
  pidFile: join(runDir, "kafka.pid"),
  properties: join(runDir, "server.properties"),
};

/** KAFKA_BROKERS set means "use that cluster"; unset means the broker this repo runs. */
export function externalBrokers(): string | undefined {
  return process.env.KAFKA_BROKERS || undefined;
}

/** True when the cluster answers a real metadata request (kcat until the project's client exists). */
export async function answersMetadata(brokers: string): Promise<boolean> {
  const { exitCode } = await capture(["kcat", "-L", "-b", brokers, "-m", "2"]);
  return exitCode === 0;
}

/** The pid of the broker this checkout started, if it is running. */
export function runningBrokerPid(): number | undefined {
  if (!existsSync(kafkaPaths.pidFile)) return undefined;
  const pid = Number(readFileSync(kafkaPaths.pidFile, "utf8").trim());
  // The pid may have been reused since: it is ours only if it runs our properties file.
  const cmdlinePath = `/proc/${pid}/cmdline`;
  if (!pid || !existsSync(cmdlinePath)) return undefined;
  return readFileSync(cmdlinePath, "utf8").includes(kafkaPaths.properties) ? pid : undefined;
}

export interface BrokerStatus {
  brokers: string;
  pid?: number;
  /** True when this call started the broker, so whoever called it may stop it again. */
  startedNow: boolean;
}

/** Makes sure a broker answers: ours (started if needed) or the external one of KAFKA_BROKERS. */
export async function ensureBroker(): Promise<BrokerStatus> {
  const external = externalBrokers();
  if (external) {
    if (!(await answersMetadata(external))) {
      throw new SetupError(
        `Kafka at ${external} (KAFKA_BROKERS) does not answer: start it, or unset KAFKA_BROKERS`,
      );
    }
    return { brokers: external, startedNow: false };
  }

  const runningPid = runningBrokerPid();
  if (runningPid) {
    await waitUntilReady(runningPid);
    return { brokers: ownBrokerAddress, pid: runningPid, startedNow: false };
  }
  rmSync(kafkaPaths.pidFile, { force: true });

  for (const port of [brokerPort, controllerPort]) {
    if (await portInUse(brokerHost, port)) {
      throw new SetupError(
        `${brokerHost}:${port} is in use by a process not started by ./dev: stop it ` +
          `(ss -ltnp 'sport = :${port}' shows which), or set KAFKA_BROKERS=${ownBrokerAddress} to use it`,
      );
    }
  }

  requireCommand("java", "install openjdk-17-jre-headless");
  const libsDir = await ensureJars();
  writeProperties();
  await formatStorageOnce(libsDir);
  const pid = launch(libsDir);
  await waitUntilReady(pid);
  return { brokers: ownBrokerAddress, pid, startedNow: true };
}

/** Stops the broker this checkout started. Returns false when none was running. */
export async function stopBroker(): Promise<boolean> {
  const pid = runningBrokerPid();
  rmSync(kafkaPaths.pidFile, { force: true });
  if (!pid) return false;
  process.kill(pid, "SIGTERM"); // a controlled shutdown flushes logs, so the next start is quick
  const deadline = Date.now() + stopDeadlineMs;
  while (isAlive(pid) && Date.now() < deadline) await Bun.sleep(200);
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
  return true;
}

function kafkaVersion(): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(pomPath, "utf8"));
  if (!match?.[1]) throw new SetupError(`no <kafka.version> in ${pomPath}: restore it`);
  return match[1];
}

/** Copies the broker's runtime jars once; a changed pom (other versions) copies them again. */
async function ensureJars(): Promise<string> {
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  const cacheDir = join(cacheRoot, "alerting", `kafka-${kafkaVersion()}`);
  const libsDir = join(cacheDir, "libs");
  const stampPath = join(cacheDir, "pom.sha256");
  const pomHash = createHash("sha256").update(readFileSync(pomPath)).digest("hex");
  if (existsSync(libsDir) && existsSync(stampPath) && readFileSync(stampPath, "utf8") === pomHash)
    return libsDir;

  requireCommand("mvn", "install maven (apt-get install -y maven)");
  console.log(`kafka: copying broker jars into ${libsDir} (once)`);
  // Copy next to the cache, then rename: an interrupted copy never looks complete.
  const partialDir = `${libsDir}.partial-${process.pid}`;
  const { exitCode, output } = await capture([
    "mvn",
    "-q",
    "-B",
    "-f",
    pomPath,
    "dependency:copy-dependencies",
    `-DoutputDirectory=${partialDir}`,
    "-DincludeScope=runtime",
  ]);
  if (exitCode !== 0) {
    rmSync(partialDir, { recursive: true, force: true });
    throw new SetupError(
      `mvn could not fetch the Kafka jars: run 'mvn -f ${pomPath} dependency:tree' to see why\n${output}`,
    );
  }
  rmSync(libsDir, { recursive: true, force: true });
  renameSync(partialDir, libsDir);
  writeFileSync(stampPath, pomHash);
  return libsDir;
}

function writeProperties(): void {
  const template = readFileSync(join(repoRoot, "infra/kafka/server.properties"), "utf8");
  const properties = template
    .replaceAll("@BROKER_ADDRESS@", ownBrokerAddress)
    .replaceAll("@CONTROLLER_ADDRESS@", `${brokerHost}:${controllerPort}`)
    .replaceAll("@DATA_DIR@", kafkaPaths.dataDir);
  mkdirSync(kafkaPaths.logsDir, { recursive: true });
  writeFileSync(kafkaPaths.properties, properties);
}

/** Formats the data dir on first start only; later starts keep the cluster id and the topics. */
async function formatStorageOnce(libsDir: string): Promise<void> {
  if (existsSync(join(kafkaPaths.dataDir, "meta.properties"))) return;
  const { exitCode, output } = await capture([
    "java",
    ...log4jOptions(),
    "-cp",
    `${libsDir}/*`,
    "kafka.tools.StorageTool",
    "format",
    "-t",
    newClusterId(),
    "-c",
    kafkaPaths.properties,
    "--standalone",
  ]);
  if (exitCode !== 0)
    throw new SetupError(`formatting Kafka storage failed: delete .run/kafka and retry\n${output}`);
}

/** Kafka's cluster id: 16 random bytes, base64url without padding, never starting with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

function log4jOptions(): string[] {
  return [
    `-Dlog4j2.configurationFile=${join(repoRoot, "infra/kafka/log4j2.properties")}`,
    `-Dkafka.logs.dir=${kafkaPaths.logsDir}`,
  ];
}

/** Starts the JVM in its own session, so it outlives `./dev infra` and ignores the terminal's Ctrl-C. */
function launch(libsDir: string): number {
  const consoleLog = openSync(kafkaPaths.consoleLog, "a");
  const child = spawn(
    "java",
    [...jvmOptions, ...log4jOptions(), "-cp", `${libsDir}/*`, "kafka.Kafka", kafkaPaths.properties],
    { cwd: repoRoot, detached: true, stdio: ["ignore", consoleLog, consoleLog] },
  );
  child.unref();
  if (!child.pid) throw new SetupError("java could not be started: check that `java -version` works");
  writeFileSync(kafkaPaths.pidFile, `${child.pid}\n`);
  console.log(`kafka: starting broker (pid ${child.pid}, logs in .run/kafka/logs)`);
  return child.pid;
}

async function waitUntilReady(pid: number): Promise<void> {
  const deadline = Date.now() + startDeadlineMs;
  // The port opens a moment before the broker can answer; kcat alone would wait 2 s per closed-port try.
  while (!((await portInUse(brokerHost, brokerPort)) && (await answersMetadata(ownBrokerAddress)))) {
    if (!isAlive(pid)) {
      rmSync(kafkaPaths.pidFile, { force: true });
      throw new SetupError(
        `the broker exited while starting: see ${kafkaPaths.serverLog} and ${kafkaPaths.consoleLog}`,
      );
    }
    if (Date.now() > deadline) {
      throw new SetupError(
        `the broker did not answer within ${startDeadlineMs / 1000} s: see ${kafkaPaths.serverLog}`,
      );
    }
    await Bun.sleep(250);
  }
}

function isAlive(pid: number): boolean {
  // A zombie still accepts signals; only a real process has a /proc status other than Z.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
