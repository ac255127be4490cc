/**
 * `./dev cluster up|down`: a three-node KRaft cluster on this machine, for trying the pipeline (and
 * `./dev chaos --cluster`) against replicated topics. Every node is broker and controller at once,
 * run by scripts/kafka.ts like the dev broker, which it leaves alone: clients on 19092-19094,
 * controllers on 19192-19194, data, logs and pid files in .run/cluster/node-N/.
 */
import { join } from "node:path";
import {
  brokerAddress,
  ensureJars,
  formatStorageOnce,
  isFormatted,
  type KafkaNode,
  kafkaHost,
  launch,
  newKafkaUuid,
  nodePaths,
  prepareStart,
  runningNodePid,
  stopNode,
  waitUntilReady,
} from "./kafka.ts";
import { capture, repoRoot, SetupError } from "./process.ts";

const nodeIds = [1, 2, 3] as const;
const firstBrokerPort = 19092;
const firstControllerPort = 19192;
export const clusterReplicationFactor = nodeIds.length;
const clusterRunDir = join(repoRoot, ".run/cluster");
const quorum = nodeIds.map((id) => `${kafkaHost}:${firstControllerPort + id - 1}`).join(",");
const brokersReadyDeadlineMs = 60_000;

const clusterNodes: readonly KafkaNode[] = nodeIds.map((nodeId) => ({
  label: `cluster node ${nodeId}`,
  nodeId,
  brokerPort: firstBrokerPort + nodeId - 1,
  controllerPort: firstControllerPort + nodeId - 1,
  quorum,
  replicationFactor: clusterReplicationFactor,
  runDir: join(clusterRunDir, `node-${nodeId}`),
  // Three JVMs beside the dev broker, Postgres, Redis and the stages on two cores.
  jvmOptions: ["-Xms512m", "-Xmx512m", "-XX:+UseG1GC"],
}));

/** KAFKA_BROKERS for the cluster: every node, so a client finds it with any one node down. */
export const clusterBrokers = clusterNodes.map(brokerAddress).join(",");

function clusterNode(nodeId: number): KafkaNode {
  const node = clusterNodes.find((n) => n.nodeId === nodeId);
  if (!node) throw new SetupError(`no cluster node ${nodeId}: the nodes are ${nodeIds.join(", ")}`);
  return node;
}

export interface ClusterStatus {
  brokers: string;
  /** Nodes this call started (the others were running already). */
  startedNodeIds: number[];
  /** True when this call started every node, so whoever called it may stop the cluster again. */
  startedNow: boolean;
  startedInMs: number;
}

/**
 * Starts whichever nodes are not running (formatting all three on the very first start) and waits
 * until every node answers and the cluster's metadata lists all three brokers.
 */
export async function ensureCluster(): Promise<ClusterStatus> {
  const startedAtMs = performance.now();
  const running = new Map(clusterNodes.map((node) => [node.nodeId, runningNodePid(node)]));
  const toStart = clusterNodes.filter((node) => running.get(node.nodeId) === undefined);
  for (const node of toStart)
    await prepareStart(node, "e.g. ./dev cluster down in the checkout whose cluster it is");
  if (toStart.length > 0) {
    const libsDir = await ensureJars();
    await formatOnce(libsDir);
    for (const node of toStart) running.set(node.nodeId, launch(node, libsDir));
  }
  // The nodes wait for each other (a quorum needs two controllers): wait for all of them together.
  await Promise.all(clusterNodes.map((node) => waitUntilReady(node, running.get(node.nodeId) as number)));
  await waitForAllBrokers();
  return {
    brokers: clusterBrokers,
    startedNodeIds: toStart.map((node) => node.nodeId),
    startedNow: toStart.length === clusterNodes.length,
    startedInMs: Math.round(performance.now() - startedAtMs),
  };
}

/** Stops every node this checkout started; returns the ids of those that were running. */
export async function stopCluster(): Promise<number[]> {
  const stopped = await Promise.all(clusterNodes.map((node) => stopNode(node)));
  return clusterNodes.filter((_, i) => stopped[i]).map((node) => node.nodeId);
}

/** The pid of a running node of the cluster, for the chaos run's kill -9. */
export function clusterNodePid(nodeId: number): number | undefined {
  return runningNodePid(clusterNode(nodeId));
}

/**
 * The three nodes share one cluster id and the same initial controller set, so they are formatted
 * together, once. A half-formatted cluster (a node's data dir deleted by hand) cannot be repaired
 * that way: it is refused with the fix.
 */
async function formatOnce(libsDir: string): Promise<void> {
  const formatted = clusterNodes.filter(isFormatted);
  if (formatted.length === clusterNodes.length) return;
  if (formatted.length > 0) {
    const missing = clusterNodes.filter((node) => !isFormatted(node)).map((node) => node.nodeId);
    throw new SetupError(
      `cluster node(s) ${missing.join(", ")} have no data while the others do: ` +
        "run ./dev cluster down, delete .run/cluster and run ./dev cluster up again",
    );
  }
  const clusterId = newKafkaUuid();
  const initialControllers = clusterNodes
    .map((node) => `${node.nodeId}@${kafkaHost}:${node.controllerPort}:${newKafkaUuid()}`)
    .join(",");
  await Promise.all(
    clusterNodes.map((node) =>
      formatStorageOnce(node, libsDir, clusterId, ["--initial-controllers", initialControllers]),
    ),
  );
}

/** A broker answers before the controller has unfenced all three: wait until metadata lists them. */
async function waitForAllBrokers(): Promise<void> {
  const deadline = Date.now() + brokersReadyDeadlineMs;
  for (;;) {
    const { exitCode, output } = await capture(["kcat", "-L", "-b", clusterBrokers, "-m", "2"]);
    const count = Number(/^ (\d+) brokers:$/m.exec(output)?.[1] ?? 0);
    if (exitCode === 0 && count === clusterNodes.length) return;
    if (Date.now() > deadline) {
      const logs = clusterNodes.map((node) => nodePaths(node).serverLog).join(", ");
      throw new SetupError(
        `the cluster lists ${count} of ${clusterNodes.length} brokers after ` +
          `${brokersReadyDeadlineMs / 1000} s: see ${logs}`,
      );
    }
    await Bun.sleep(250);
  }
}
