/**
 * The limits the pipeline bench compares itself with, measured in the same run:
 *
 *   kcat      produce N records of the alerts' size to a fresh topic with the pipeline's partition
 *             count (idempotent, acks=all, as our producer), then consume them with a fresh group:
 *             one Kafka hop done by C, the I/O ceiling of one stage;
 *   postgres  the aggregator's dedupe insert (its own insertNotifications: INSERT ... SELECT FROM
 *             unnest(...) ON CONFLICT DO NOTHING RETURNING, plus its non-terminal re-announce half) in
 *             batches of the aggregator's size, one statement at a time as the aggregator runs them,
 *             into a scratch copy of `notifications` (CREATE TABLE ... LIKE, dropped after);
 *   webhook   the sender's HTTP client (Http1Client, address pinned as the SSRF guard does) POSTing
 *             webhook bodies to the sink, a fixed number at a time.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createScratchNotifications } from "../../harness/scratch-notifications.ts";
import { insertNotifications, type NotificationInput } from "../../src/adapters/notification-store.ts";
import type { Sql } from "../../src/adapters/postgres.ts";
import { Http1Client } from "../../src/channels/http1-client.ts";
import { clientScope } from "../../src/core/matching/scope.ts";
import type { Admin } from "../../src/kafka/index.ts";
import { type CpuUse, startCpuMeter } from "../support/cpu.ts";
import { kcatConsumeCount, kcatProduceFile } from "../support/kcat.ts";
import { type PostCeiling, postCeiling } from "../support/sender-work.ts";

/** CPU seconds the whole machine used over a window of `seconds`. */
export interface MachineCpu {
  seconds: number;
  busyS: number;
}

export function machineCpu(use: CpuUse): MachineCpu {
  return { seconds: use.seconds, busyS: use.machineBusyS };
}

export interface KcatCeiling {
  produceRecordsPerS: number;
  consumeRecordsPerS: number;
  /** N / (produce time + consume time): one hop, written then read. */
  hopRecordsPerS: number;
  /** The machine's CPU (all processes: kcat, the broker) over the produce and the consume. */
  machineCpu: MachineCpu;
}

export interface PostgresCeiling {
  rowsPerS: number;
  batchRows: number;
  statementMsP50: number;
  statementMsP99: number;
  /** The machine's CPU (Postgres and this process's client side) over the inserts. */
  machineCpu: MachineCpu;
}

export async function kcatCeiling(options: {
  brokers: string;
  admin: Admin;
  topic: string;
  partitions: number;
  records: number;
  valueBytes: number;
}): Promise<KcatCeiling> {
  const { brokers, admin, topic, partitions, records, valueBytes } = options;
  await admin.createTopics([{ name: topic, partitions, config: { "retention.ms": String(10 * 60 * 1000) } }]);
  const dir = mkdtempSync(join(tmpdir(), "bench-pipeline-"));
  try {
    const input = join(dir, "records.tsv");
    const writer = Bun.file(input).writer();
    const filler = "x".repeat(valueBytes);
    for (let i = 0; i < records; i++) {
      const key = `k${i % 1000}`;
      writer.write(`${key}\t${`${i}-${filler}`.slice(0, valueBytes)}\n`);
    }
    await writer.end();
    const cpu = startCpuMeter();
    const produceStart = performance.now();
    await kcatProduceFile(brokers, topic, input);
    const produceS = (performance.now() - produceStart) / 1000;
    const consumeStart = performance.now();
    const seen = await kcatConsumeCount(brokers, topic, `${topic}-group`, valueBytes);
    const consumeS = (performance.now() - consumeStart) / 1000;
    if (Math.round(seen) !== records) throw new Error(`kcat consumed ${seen} of ${records} records`);
    return {
      produceRecordsPerS: records / produceS,
      consumeRecordsPerS: records / consumeS,
      hopRecordsPerS: records / (produceS + consumeS),
      machineCpu: machineCpu(cpu()),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function postgresCeiling(options: {
  sql: Sql;
  table: string;
  rows: number;
  batchRows: number;
  clientIds: readonly string[];
  ruleIds: readonly string[];
  source: string;
}): Promise<PostgresCeiling> {
  const { sql, table, rows, batchRows, clientIds, ruleIds, source } = options;
  await createScratchNotifications(sql, table);
  const durations: number[] = [];
  const cpu = startCpuMeter();
  const start = performance.now();
  for (let first = 0; first < rows; first += batchRows) {
    const size = Math.min(batchRows, rows - first);
    const eventTimeMs = Date.now();
    const batch = Array.from({ length: size }, (_, k): NotificationInput => {
      const i = first + k;
      return {
        clientId: clientIds[i % clientIds.length] as string,
        scope: clientScope(clientIds[i % clientIds.length] as string),
        route: "",
        alertId: `pg-${i}`,
        severity: "HIGH",
        source,
        name: `a${i % clientIds.length}`,
        context: { host: "bench-1" },
        ruleIds: [ruleIds[i % ruleIds.length] as string],
        eventTimeMs,
      };
    });
    const statementStart = performance.now();
    const returned = await insertNotifications(sql, batch, table);
    durations.push(performance.now() - statementStart);
    if (returned.length !== size)
      throw new Error(`dedupe insert returned ${returned.length} of ${size} rows`);
  }
  const elapsedS = (performance.now() - start) / 1000;
  const used = machineCpu(cpu());
  durations.sort((a, b) => a - b);
  const at = (q: number) =>
    durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? NaN;
  return {
    rowsPerS: rows / elapsedS,
    batchRows,
    statementMsP50: at(0.5),
    statementMsP99: at(0.99),
    machineCpu: used,
  };
}

/** `count` POSTs of `body` to `url` through the sender's client, `concurrency` at a time. */
export async function webhookCeiling(
  url: string,
  options: { count: number; concurrency: number; body: string },
): Promise<PostCeiling> {
  const target = new URL(url);
  const client = new Http1Client();
  try {
    return await postCeiling("webhook ceiling", options, async () => {
      const response = await client.request({
        url: target,
        address: target.hostname,
        body: options.body,
        headers: { "content-type": "application/json" },
        timeoutMs: 10_000,
      });
      return response.status;
    });
  } finally {
    client.close();
  }
}

/** One part of the work every alert needs, measured alone: machine CPU microseconds per alert. */
export interface FloorPart {
  label: string;
  cpuUsPerAlert: number;
}

/**
 * The least CPU an alert costs on this machine, from the ceilings: the parts every alert needs
 * (three Kafka hops, the dedupe insert, the sender's statements, one webhook POST), each done by the
 * leanest client measured, with nothing of our stages' own code. `cores` / that total bounds the
 * end-to-end rate whatever the stages do; at a given rate, it is the share of the machine that the
 * floor alone keeps busy.
 */
export interface CpuFloor {
  parts: FloorPart[];
  cpuUsPerAlert: number;
  cores: number;
  maxAlertsPerS: number;
}

export function cpuFloor(parts: FloorPart[], cores: number): CpuFloor {
  const cpuUsPerAlert = parts.reduce((sum, part) => sum + part.cpuUsPerAlert, 0);
  return { parts, cpuUsPerAlert, cores, maxAlertsPerS: (cores * 1e6) / cpuUsPerAlert };
}

/** Machine CPU microseconds per unit of work, net of what the machine burns idle over as long. */
export function netCpuUs(used: MachineCpu, idle: MachineCpu, units: number): number {
  const idleBusyS = (idle.busyS / idle.seconds) * used.seconds;
  return (Math.max(0, used.busyS - idleBusyS) / units) * 1e6;
}
