/**
 * Kafka client benchmark: `./dev bench kafka [records]` (default 1M). On the local broker, three jobs
 * run for three clients, side by side:
 *
 *   produce      RECORDS records (8-byte keys over 100k values, 100-byte values) to a fresh
 *                6-partition topic, idempotent (acks=all), until every one is acknowledged;
 *   consume      that topic with a fresh group from the earliest offset until every record is seen;
 *   passthrough  consume that topic (fresh group), produce each record to a second fresh topic, await
 *                the acknowledgements of each batch, then commit its offsets.
 *
 * Clients: ours (src/kafka, Bun + bun:ffi over the system librdkafka), kcat (the same librdkafka in
 * C: the I/O limit on this machine) and @confluentinc/kafka-javascript on Node (bench/peers; built
 * from source on the first run). Every job's time runs from creating its clients to closing them.
 * Targets: produce and consume >= 80% of kcat, passthrough >= 3x the Node client.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Admin, type CommitOffset, Consumer, Producer } from "../src/kafka/index.ts";
import { createLogger } from "../src/runtime/log.ts";
import { table } from "./match.ts";
import { brokers, partitionCount, runCommand, targetCell, topicRetentionMs } from "./support/common.ts";
import { kcatConsumeCount, kcatPassthrough, kcatProduceFile } from "./support/kcat.ts";

const recordCount = Number(process.argv[2] ?? 1_000_000);
const keyCount = 100_000;
// Values cycle through this many distinct payloads, built once, so no client pays for making data.
const valueCount = 1000;
const valueBytes = 100;
const batchRecordsMax = 10_000;
// Produce keeps this many batches unacknowledged: 200k records, librdkafka's queue size in our client.
const batchesInFlightMax = 20;
const consumeWaitMs = 100;
const produceTarget = 0.8;
const consumeTarget = 0.8;
const passthroughTarget = 3;

const logger = createLogger("bench.kafka", 40); // errors only: warnings would interleave with the table
const peersDir = join(import.meta.dir, "peers");
const peerScript = join(peersDir, "confluent.cjs");
const peerPackage = "@confluentinc/kafka-javascript";
const peerBuildHeadersDir = "/usr"; // Debian's nodejs headers, /usr/include/node: no download needed
const peerBuildProgressIntervalMs = 20_000;

const utf8 = new TextEncoder();

/** The same keys and values as bench/peers/confluent.cjs builds. */
const keyText = (index: number) => `k${String(index % keyCount).padStart(7, "0")}`;
const valueText = (index: number) =>
  `v${String(index % valueCount).padStart(9, "0")}`.repeat(valueBytes / 10);
const keys = Array.from({ length: keyCount }, (_, i) => utf8.encode(keyText(i)));
const values = Array.from({ length: valueCount }, (_, i) => utf8.encode(valueText(i)));

type Job = "produce" | "consume" | "passthrough";
type ClientName = "ours" | "kcat" | "node";
/** Records per second, or why the figure is missing. */
type Outcome = { recordsPerS: number } | { failure: string };

/** What one client's job works on; every run gets fresh topics and groups. */
interface JobContext {
  topicIn: string;
  topicOut: string;
  group: string;
  kcatInputPath: string;
}

interface Timed {
  records: number;
  elapsedMs: number;
}

async function main(): Promise<void> {
  const runId = `${Date.now().toString(36)}-${process.pid}`;
  const topicName = (client: ClientName, role: "in" | "out") => `bench-${runId}-${client}-${role}`;
  console.log(
    `kafka bench ${runId}: ${recordCount.toLocaleString("en-US")} records of ${valueBytes} bytes ` +
      `(${keyCount.toLocaleString("en-US")} keys), ${partitionCount} partitions, broker ${brokers}`,
  );
  const peerFailure = await ensurePeer();
  if (peerFailure) console.log(`node: no figures: ${peerFailure}`);

  const admin = new Admin(brokers, {}, logger);
  const workDir = mkdtempSync(join(tmpdir(), "bench-kafka-"));
  try {
    const clients: ClientName[] = peerFailure ? ["ours", "kcat"] : ["ours", "kcat", "node"];
    await admin.createTopics(
      clients.flatMap((client) =>
        (["in", "out"] as const).map((role) => ({
          name: topicName(client, role),
          partitions: partitionCount,
          // Each run leaves 6 topics of ~130 MB; the broker deletes their records after this.
          config: { "retention.ms": String(topicRetentionMs) },
        })),
      ),
    );
    const kcatInputPath = join(workDir, "records.tsv");
    await writeKcatInput(kcatInputPath);

    // Job by job, so that the clients compared in one row ran minutes apart at most.
    const results = new Map<Job, Map<ClientName, Outcome>>();
    for (const job of ["produce", "consume", "passthrough"] as const) {
      const outcomes = new Map<ClientName, Outcome>();
      results.set(job, outcomes);
      for (const client of clients) {
        const context: JobContext = {
          topicIn: topicName(client, "in"),
          topicOut: topicName(client, "out"),
          group: `bench-${runId}-${client}-${job}`,
          kcatInputPath,
        };
        const writtenTopic = job === "produce" ? context.topicIn : context.topicOut;
        const outcome = await measure(() => runners[client][job](context), admin, job, writtenTopic);
        outcomes.set(client, outcome);
        console.log(`${job.padEnd(11)} ${client.padEnd(4)} ${describe(outcome)}`);
      }
    }
    if (peerFailure) for (const outcomes of results.values()) outcomes.set("node", { failure: peerFailure });
    printTable(results);
  } finally {
    admin.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Runs one job and turns its record count and time into a rate. Jobs that write a topic are checked
 * against the topic's end offsets: with idempotence on, exactly `recordCount` must have landed.
 */
async function measure(
  run: () => Promise<Timed>,
  admin: Admin,
  job: Job,
  writtenTopic: string,
): Promise<Outcome> {
  try {
    const { records, elapsedMs } = await run();
    if (records < recordCount) return { failure: `saw ${records} of ${recordCount} records` };
    if (job !== "consume") {
      const written = admin.endOffsetTotal(writtenTopic);
      if (written !== recordCount)
        return { failure: `${writtenTopic} holds ${written} records, not ${recordCount}` };
    }
    return { recordsPerS: (records / elapsedMs) * 1000 };
  } catch (error) {
    return { failure: error instanceof Error ? error.message : String(error) };
  }
}

const runners: Record<ClientName, Record<Job, (context: JobContext) => Promise<Timed>>> = {
  ours: {
    produce: ({ topicIn }) => timed(() => produceOurs(topicIn)),
    consume: ({ topicIn, group }) => timed(() => consumeOurs(topicIn, group)),
    passthrough: ({ topicIn, topicOut, group }) => timed(() => passthroughOurs(topicIn, topicOut, group)),
  },
  kcat: {
    produce: ({ topicIn, kcatInputPath }) =>
      timed(async () => {
        await kcatProduceFile(brokers, topicIn, kcatInputPath);
        return recordCount;
      }),
    consume: ({ topicIn, group }) => timed(() => kcatConsumeCount(brokers, topicIn, group, valueBytes)),
    passthrough: ({ topicIn, topicOut, group }) =>
      timed(async () => {
        await kcatPassthrough({ brokers, topicIn, topicOut, group });
        return recordCount;
      }),
  },
  // The peer times itself, from creating its clients to closing them, as we time ours.
  node: {
    produce: ({ topicIn }) => runPeer(["produce", brokers, topicIn, String(recordCount)]),
    consume: ({ topicIn, group }) => runPeer(["consume", brokers, topicIn, group, String(recordCount)]),
    passthrough: ({ topicIn, topicOut, group }) =>
      runPeer(["passthrough", brokers, topicIn, topicOut, group, String(recordCount)]),
  },
};

async function timed(run: () => Promise<number>): Promise<Timed> {
  const startMs = performance.now();
  const records = await run();
  return { records, elapsedMs: performance.now() - startMs };
}

/** Sends batches without waiting for each: up to `batchesInFlightMax` wait for acknowledgement. */
async function produceOurs(topic: string): Promise<number> {
  const producer = new Producer({ brokers, logger });
  const inFlight: Promise<void>[] = [];
  for (let first = 0; first < recordCount; first += batchRecordsMax) {
    const size = Math.min(batchRecordsMax, recordCount - first);
    const batch = Array.from({ length: size }, (_, i) => ({
      topic,
      key: keys[(first + i) % keyCount],
      value: values[(first + i) % valueCount] as Uint8Array,
    }));
    inFlight.push(producer.send(batch));
    if (inFlight.length >= batchesInFlightMax) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await producer.close();
  return recordCount;
}

async function consumeOurs(topic: string, groupId: string): Promise<number> {
  const consumer = new Consumer({ brokers, groupId, topics: [topic], logger });
  let seen = 0;
  while (seen < recordCount) seen += (await consumer.consume(batchRecordsMax, consumeWaitMs)).length;
  await consumer.close();
  return seen;
}

/** What a pipeline stage does per batch: forward every record, await its acknowledgement, commit. */
async function passthroughOurs(topicIn: string, topicOut: string, groupId: string): Promise<number> {
  const consumer = new Consumer({ brokers, groupId, topics: [topicIn], logger });
  const producer = new Producer({ brokers, logger });
  let forwarded = 0;
  while (forwarded < recordCount) {
    const records = await consumer.consume(batchRecordsMax, consumeWaitMs);
    if (records.length === 0) continue;
    await producer.send(records.map((record) => ({ topic: topicOut, key: record.key, value: record.value })));
    const nextOffsets = new Map<number, CommitOffset>();
    for (const { topic, partition, offset, assignmentEpoch } of records)
      nextOffsets.set(partition, { topic, partition, offset: offset + 1, assignmentEpoch });
    await consumer.commit([...nextOffsets.values()]);
    forwarded += records.length;
  }
  await consumer.close();
  await producer.close();
  return forwarded;
}

/** The kcat input file: one `key TAB value` line per record, written in chunks to keep memory flat. */
async function writeKcatInput(path: string): Promise<void> {
  const writer = Bun.file(path).writer();
  const lines: string[] = [];
  for (let index = 0; index < recordCount; index++) {
    lines.push(`${keyText(index)}\t${valueText(index)}\n`);
    if (lines.length === batchRecordsMax || index === recordCount - 1) {
      writer.write(lines.join(""));
      lines.length = 0;
    }
  }
  await writer.end();
}

async function runPeer(args: string[]): Promise<Timed> {
  const stdout = await runCommand(["node", peerScript, ...args]);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
}

/**
 * Makes the Node peer loadable: installs bench/peers on the first run (a source build of the addon,
 * minutes), reuses it afterwards. Returns why the peer cannot run, or undefined when it can.
 */
async function ensurePeer(): Promise<string | undefined> {
  let nodeVersion: string;
  try {
    nodeVersion = (await runCommand(["node", "--version"])).trim();
  } catch (error) {
    return `cannot run node: ${error instanceof Error ? error.message : error}`;
  }
  const load = ["node", "-e", `require(${JSON.stringify(peerPackage)})`];
  if (existsSync(join(peersDir, "node_modules", peerPackage))) {
    try {
      await runCommand(load, { cwd: peersDir });
      return undefined;
    } catch {
      // A broken or partial install: build it again below.
    }
  }
  const logPath = join(peersDir, "npm-install.log");
  console.log(
    `node: building ${peerPackage} for Node ${nodeVersion} from source (one-time, ~3 min; log ${logPath})`,
  );
  const startMs = performance.now();
  const progress = setInterval(
    () => console.log(`node: still building (${Math.round((performance.now() - startMs) / 1000)} s)`),
    peerBuildProgressIntervalMs,
  );
  // The prebuilt binary it tries first needs the network; CKJS_LINKING=dynamic builds the bundled
  // librdkafka against the system's OpenSSL and zlib instead of downloading them.
  const env: Record<string, string | undefined> = { ...process.env, CKJS_LINKING: "dynamic" };
  if (existsSync(join(peerBuildHeadersDir, "include/node/node_version.h")))
    env.npm_config_nodedir = peerBuildHeadersDir;
  const install = Bun.spawn(["npm", "install", "--no-audit", "--no-fund", "--foreground-scripts"], {
    cwd: peersDir,
    env,
    stdout: Bun.file(logPath),
    stderr: Bun.file(logPath),
  });
  const exitCode = await install.exited;
  clearInterval(progress);
  const seconds = Math.round((performance.now() - startMs) / 1000);
  if (exitCode !== 0)
    return `npm install in ${peersDir} failed (exit ${exitCode}) after ${seconds} s: see ${logPath}`;
  try {
    await runCommand(load, { cwd: peersDir });
  } catch (error) {
    return `${peerPackage} built but does not load: ${error instanceof Error ? error.message : error}`;
  }
  console.log(`node: built in ${seconds} s`);
  return undefined;
}

function describe(outcome: Outcome): string {
  return "recordsPerS" in outcome
    ? `${formatRate(outcome.recordsPerS)} records/s`
    : `failed: ${outcome.failure}`;
}

function formatRate(recordsPerS: number): string {
  return Math.round(recordsPerS).toLocaleString("en-US");
}

function printTable(results: Map<Job, Map<ClientName, Outcome>>): void {
  const targets: Record<Job, { versus: ClientName; ratio: number }> = {
    produce: { versus: "kcat", ratio: produceTarget },
    consume: { versus: "kcat", ratio: consumeTarget },
    passthrough: { versus: "node", ratio: passthroughTarget },
  };
  const rate = (outcome: Outcome | undefined) =>
    outcome && "recordsPerS" in outcome ? outcome.recordsPerS : undefined;
  const header = [
    "records/s",
    "ours (bun:ffi)",
    "kcat",
    "node (confluent)",
    "ours/kcat",
    "ours/node",
    "target",
  ];
  const rows: string[][] = [];
  for (const [job, outcomes] of results) {
    const ours = rate(outcomes.get("ours"));
    const ratioTo = (client: ClientName) => {
      const theirs = rate(outcomes.get(client));
      return ours !== undefined && theirs !== undefined ? ours / theirs : undefined;
    };
    const target = targets[job];
    rows.push([
      job,
      ...(["ours", "kcat", "node"] as const).map((client) => {
        const value = rate(outcomes.get(client));
        return value === undefined ? "n/a" : formatRate(value);
      }),
      ...(["kcat", "node"] as const).map((client) => ratioTo(client)?.toFixed(2) ?? "n/a"),
      targetCell(ratioTo(target.versus), target.ratio, target.versus),
    ]);
  }
  console.log(`\n${table(header, rows)}`);
  console.log(`peak RSS of this process: ${peakRssMiB()} MiB`);
}

/** VmHWM: the most resident memory this process has had at any moment. */
function peakRssMiB(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Math.round(Number(match[1]) / 1024) : Number.NaN;
}

await main();
