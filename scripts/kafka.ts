/**
 * The development Kafka: KRaft nodes (broker and controller in one process) run from Maven Central
 * jars, no Docker. `./dev infra` runs one node (the dev broker, 9092); `./dev cluster up` runs three
 * (scripts/cluster.ts) from the same functions.
 *
 * Jars are copied once per pom into a cache outside the repo (shared by every checkout); each node's
 * data, logs and pid file live in the repo's git-ignored .run/. When KAFKA_BROKERS is set, the dev
 * broker is someone else's: we only check that it answers.
 */

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { minInsyncReplicas } from "../src/kafka/replication.ts";
import { capture, repoRoot, requireCommand, SetupError } from "./process.ts";

export const kafkaHost = "127.0.0.1";

/** One KRaft node this checkout runs: where it listens, what it stores where, how big its heap is. */
export interface KafkaNode {
  /** Names the node in messages: "the broker", "cluster node 2". */
  label: string;
  nodeId: number;
  brokerPort: number;
  controllerPort: number;
  /** Every controller of the node's cluster, host:port, comma-separated. */
  quorum: string;
  /** Replication factor of the internal topics and of topics created without one. */
  replicationFactor: number;
  runDir: string;
  jvmOptions: string[];
}

export interface KafkaNodePaths {
  dataDir: string;
  logsDir: string;
  serverLog: string;
  consoleLog: string;
  pidFile: string;
  properties: string;
}

const startDeadlineMs = 90_000;
const stopDeadlineMs = 30_000;

const devNode: KafkaNode = {
  label: "the broker",
  nodeId: 1,
  brokerPort: 9092,
  controllerPort: 9093,
  quorum: `${kafkaHost}:9093`,
  replicationFactor: 1,
  runDir: join(repoRoot, ".run/kafka"),
  // Two cores and 24 GiB per machine: a fixed 1 GiB heap leaves room for Postgres, Redis and the stages.
  jvmOptions: ["-Xms1g", "-Xmx1g", "-XX:+UseG1GC"],
};
export const ownBrokerAddress = brokerAddress(devNode);
export const kafkaPaths = nodePaths(devNode);

const pomPath = join(repoRoot, "infra/kafka/pom.xml");

export function brokerAddress(node: KafkaNode): string {
  return `${kafkaHost}:${node.brokerPort}`;
}

export function nodePaths(node: KafkaNode): KafkaNodePaths {
  return {
    dataDir: join(node.runDir, "data"),
    logsDir: join(node.runDir, "logs"),
    serverLog: join(node.runDir, "logs/server.log"),
    consoleLog: join(node.runDir, "logs/console.log"),
    pidFile: join(node.runDir, "kafka.pid"),
    properties: join(node.runDir, "server.properties"),
  };
}

/** KAFKA_BROKERS set means "use that cluster"; unset means the broker this repo runs. */
export function externalBrokers(): string | undefined {
  return process.env.KAFKA_BROKERS || undefined;
}

/** True when the cluster answers a real metadata request (kcat until the project's client exists). */
export async function answersMetadata(brokers: string): Promise<boolean> {
  const { exitCode } = await capture(["kcat", "-L", "-b", brokers, "-m", "2"]);
  return exitCode === 0;
}

/** The pid of the dev broker this checkout started, if it is running. */
export function runningBrokerPid(): number | undefined {
  return runningNodePid(devNode);
}

/** The pid of `node` if this checkout started it and it is running. */
export function runningNodePid(node: KafkaNode): number | undefined {
  const { pidFile, properties } = nodePaths(node);
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  // The pid may have been reused since: it is ours only if it runs our properties file.
  const cmdlinePath = `/proc/${pid}/cmdline`;
  if (!pid || !existsSync(cmdlinePath)) return undefined;
  return readFileSync(cmdlinePath, "utf8").includes(properties) ? pid : undefined;
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
    await waitUntilReady(devNode, runningPid);
    return { brokers: ownBrokerAddress, pid: runningPid, startedNow: false };
  }
  await prepareStart(devNode, `or set KAFKA_BROKERS=${ownBrokerAddress} to use it`);
  const libsDir = await ensureJars();
  await formatStorageOnce(devNode, libsDir, newKafkaUuid(), ["--standalone"]);
  const pid = launch(devNode, libsDir);
  await waitUntilReady(devNode, pid);
  return { brokers: ownBrokerAddress, pid, startedNow: true };
}

/** Stops the dev broker this checkout started. Returns false when none was running. */
export function stopBroker(): Promise<boolean> {
  return stopNode(devNode);
}

/**
 * Before launching `node`: forgets a stale pid file, refuses ports someone else holds (`otherwise`
 * completes the advice), checks Java and writes the node's server.properties.
 */
export async function prepareStart(node: KafkaNode, otherwise: string): Promise<void> {
  rmSync(nodePaths(node).pidFile, { force: true });
  for (const port of [node.brokerPort, node.controllerPort]) {
    if (await portInUse(kafkaHost, port)) {
      throw new SetupError(
        `${kafkaHost}:${port} (${node.label}) is in use by a process not started by ./dev: stop it ` +
          `(ss -ltnp 'sport = :${port}' shows which), ${otherwise}`,
      );
    }
  }
  requireCommand("java", "install openjdk-17-jre-headless");
  writeProperties(node);
}

/** Stops `node` if this checkout started it: SIGTERM, SIGKILL after the deadline. False when none ran. */
export async function stopNode(node: KafkaNode): Promise<boolean> {
  const pid = runningNodePid(node);
  rmSync(nodePaths(node).pidFile, { force: true });
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
export async function ensureJars(): Promise<string> {
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

function writeProperties(node: KafkaNode): void {
  const paths = nodePaths(node);
  const template = readFileSync(join(repoRoot, "infra/kafka/server.properties"), "utf8");
  const properties = template
    .replaceAll("@NODE_ID@", String(node.nodeId))
    .replaceAll("@BROKER_ADDRESS@", brokerAddress(node))
    .replaceAll("@CONTROLLER_ADDRESS@", `${kafkaHost}:${node.controllerPort}`)
    .replaceAll("@CONTROLLER_QUORUM@", node.quorum)
    .replaceAll("@REPLICATION_FACTOR@", String(node.replicationFactor))
    .replaceAll("@MIN_INSYNC_REPLICAS@", String(minInsyncReplicas(node.replicationFactor)))
    .replaceAll("@DATA_DIR@", paths.dataDir);
  mkdirSync(paths.logsDir, { recursive: true });
  writeFileSync(paths.properties, properties);
}

export function isFormatted(node: KafkaNode): boolean {
  return existsSync(join(nodePaths(node).dataDir, "meta.properties"));
}

/**
 * Formats the node's data dir on its first start only; later starts keep the cluster id and the
 * topics. `quorumArgs` says how the controller quorum begins (`--standalone` for a single node).
 */
export async function formatStorageOnce(
  node: KafkaNode,
  libsDir: string,
  clusterId: string,
  quorumArgs: string[],
): Promise<void> {
  if (isFormatted(node)) return;
  const paths = nodePaths(node);
  const { exitCode, output } = await capture([
    "java",
    ...log4jOptions(node),
    "-cp",
    `${libsDir}/*`,
    "kafka.tools.StorageTool",
    "format",
    "-t",
    clusterId,
    "-c",
    paths.properties,
    ...quorumArgs,
  ]);
  if (exitCode !== 0) {
    const runDir = relative(repoRoot, node.runDir);
    throw new SetupError(`formatting ${node.label}'s storage failed: delete ${runDir} and retry\n${output}`);
  }
}

/** Kafka's uuid format (cluster and directory ids): 16 random bytes, base64url, never starting with '-'. */
export function newKafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

function log4jOptions(node: KafkaNode): string[] {
  return [
    `-Dlog4j2.configurationFile=${join(repoRoot, "infra/kafka/log4j2.properties")}`,
    `-Dkafka.logs.dir=${nodePaths(node).logsDir}`,
  ];
}

/** Starts the JVM in its own session, so it outlives `./dev` and ignores the terminal's Ctrl-C. */
export function launch(node: KafkaNode, libsDir: string): number {
  const paths = nodePaths(node);
  const consoleLog = openSync(paths.consoleLog, "a");
  const child = spawn(
    "java",
    [...node.jvmOptions, ...log4jOptions(node), "-cp", `${libsDir}/*`, "kafka.Kafka", paths.properties],
    { cwd: repoRoot, detached: true, stdio: ["ignore", consoleLog, consoleLog] },
  );
  child.unref();
  if (!child.pid) throw new SetupError("java could not be started: check that `java -version` works");
  writeFileSync(paths.pidFile, `${child.pid}\n`);
  const where = relative(repoRoot, paths.logsDir);
  console.log(`kafka: starting ${node.label} (pid ${child.pid}, port ${node.brokerPort}, logs in ${where})`);
  return child.pid;
}

/** Waits until `node` (process `pid`) answers a metadata request; fails if it exits or takes too long. */
export async function waitUntilReady(node: KafkaNode, pid: number): Promise<void> {
  const paths = nodePaths(node);
  const address = brokerAddress(node);
  const deadline = Date.now() + startDeadlineMs;
  // The port opens a moment before the broker can answer; kcat alone would wait 2 s per closed-port try.
  while (!((await portInUse(kafkaHost, node.brokerPort)) && (await answersMetadata(address)))) {
    if (!isAlive(pid)) {
      rmSync(paths.pidFile, { force: true });
      throw new SetupError(
        `${node.label} exited while starting: see ${paths.serverLog} and ${paths.consoleLog}`,
      );
    }
    if (Date.now() > deadline) {
      throw new SetupError(
        `${node.label} did not answer within ${startDeadlineMs / 1000} s: see ${paths.serverLog}`,
      );
    }
    await Bun.sleep(250);
  }
}

export function isAlive(pid: number): boolean {
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
