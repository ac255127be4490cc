/**
 * Sender stage benchmark: `./dev bench sender [notifications]` (default 100k). The real sender
 * process (its own topic and group) takes preloaded notifications.ready records for rows this run
 * inserted directly (status RECEIVED, safety net an hour out, so only the consume path claims them),
 * claims them, POSTs one signed webhook each to a local Bun.serve sink answering 200, and records
 * deliveries and statuses. A handful of bench clients, each with one rule and one webhook endpoint.
 *
 * Figures: webhook deliveries/s at the sink (first request to last), status updates/s (first SENT
 * row seen to all SENT, polled), and the row writes per notification across aggregator and sender:
 * insert + claim update(s) + deliveries insert(s) + status update(s). Two ceilings are measured in
 * the same run, and the lower one is the one that binds the sender:
 *
 *   postgres  (first, before the sender's rows exist) the sender's own Postgres work with no HTTP
 *             and no Kafka: the same count of fresh RECEIVED rows for the same clients, driven in
 *             this process through the real DeliveryStore as the sender drives it: claim batches of
 *             BATCH_SIZE_MAX ids one at a time, each followed by a dispatch (endpointWork, a SUCCESS
 *             attempt per pending endpoint, the status from decideStatus, recordAttempt) with up to
 *             DISPATCHES_IN_FLIGHT_MAX dispatches in flight, on a pool of the sender's size. Reports
 *             notifications/s and the mean wall ms per statement kind (recordAttempt counts its whole
 *             transaction: BEGIN, SET LOCAL, the statement, COMMIT). Its rows are then deleted and
 *             the tables vacuumed, so the sender starts from the same table state.
 *   fetch     (after the sender) the sink's own ceiling: no peer process exists for a webhook
 *             fan-out here, so the bench POSTs the same count of bodies to the same sink with Bun's
 *             fetch at the sender's concurrency.
 *
 * Beside each measurement: the CPU it took, as % of one core, from this process (the sink during the
 * sender's run), from Postgres (all its processes, so others' queries too) and from the broker, and
 * the machine's busy share (2 cores, shared with other runs); the sender's own CPU is on its line.
 * The JSON result holds both ceilings, the ratios, the binding one and the CPU figures.
 * Target: >= 20k deliveries/s. Afterwards the run deletes its notifications (deliveries cascade)
 * and its clients (rules and endpoints cascade).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  type AttemptRecord,
  type ClaimedNotification,
  DeliveryStore,
  type StatusUpdate,
} from "../src/adapters/delivery-store.ts";
import { connectPostgres, type Sql } from "../src/adapters/postgres.ts";
import { toDeliveryResult } from "../src/channels/types.ts";
import { decideStatus } from "../src/core/delivery-status.ts";
import { classifyHttpStatus } from "../src/core/retry.ts";
import { NotificationReadySchema } from "../src/gen/alerting/v1/alert_pb.ts";
import type { ProduceRecord } from "../src/kafka/index.ts";
import { brokerPid, CpuByName, cpuSeconds, machineCpuSeconds } from "./pipeline/procs.ts";
import {
  brokers,
  createTopics,
  describeBatches,
  describeStageUse,
  finish,
  fmt,
  loadText,
  newAdmin,
  newRunId,
  preload,
  reclaim,
  retrying,
  runStage,
  table,
  verdict,
} from "./support/common.ts";

const notificationCount = Number(process.argv[2] ?? 100_000);
const endpointCount = 4;
const target = 20_000;
const senderEnv = {
  ENDPOINT_RATE_PER_SECOND: process.env.ENDPOINT_RATE_PER_SECOND ?? "1000000",
  ENDPOINT_BURST: process.env.ENDPOINT_BURST ?? "1000000",
  ENDPOINT_CONCURRENCY_MAX: process.env.ENDPOINT_CONCURRENCY_MAX ?? "256",
  BATCH_SIZE_MAX: process.env.BATCH_SIZE_MAX ?? "2000",
  DISPATCHES_IN_FLIGHT_MAX: process.env.DISPATCHES_IN_FLIGHT_MAX ?? "4",
};
/** What src/stages/sender/main.ts gives its DeliveryStore: its pool size and LEASE_MS default. */
const senderConnectionsMax = 10;
const senderLeaseMs = 30_000;
const insertChunk = 20_000;
const tablesWritten = ["notifications", "deliveries"];
const repoRoot = new URL("..", import.meta.url).pathname;

class Sink {
  count = 0;
  firstMs = 0;
  lastMs = 0;
  readonly server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      const now = performance.now();
      if (this.count++ === 0) this.firstMs = now;
      this.lastMs = now;
      return new Response("ok");
    },
  });

  reset(): void {
    this.count = 0;
    this.firstMs = 0;
    this.lastMs = 0;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.server.port}${path}`;
  }
}

/** The run's clients, each with one rule and one webhook endpoint on the sink (index i ~ client i). */
interface BenchClients {
  clientIds: string[];
  ruleIds: string[];
}

function newClients(): BenchClients {
  const clientIds = Array.from({ length: endpointCount }, () => crypto.randomUUID());
  return { clientIds, ruleIds: clientIds.map(() => crypto.randomUUID()) };
}

async function insertClients(sql: Sql, runId: string, sink: Sink, { clientIds, ruleIds }: BenchClients) {
  await sql.unsafe(
    `INSERT INTO clients (id, name) SELECT id, 'bench-sender-${runId}-' || n
     FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
    [clientIds] as never[],
  );
  await sql.unsafe(
    `INSERT INTO rules (id, client_id, severity, source, name)
     SELECT rule_id, client_id, 'HIGH', 'bench-source', 'bench-alert' FROM unnest($1::uuid[], $2::uuid[]) AS t(rule_id, client_id)`,
    [ruleIds, clientIds] as never[],
  );
  await sql.unsafe(
    `INSERT INTO endpoints (rule_id, client_id, type, value, secret)
     SELECT rule_id, client_id, 'webhook', url, 'bench-secret' FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(rule_id, client_id, url)`,
    [ruleIds, clientIds, clientIds.map((id) => sink.url(`/hook/${id}`))] as never[],
  );
}

/**
 * Inserts `count` RECEIVED notifications round-robin over the clients (notification i belongs to
 * client i % endpointCount, alert id `<alertPrefix>-<i>`), safety net an hour out so that no
 * scheduler claims them; returns their ids in that order.
 */
async function insertNotifications(
  sql: Sql,
  { clientIds, ruleIds }: BenchClients,
  alertPrefix: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  const eventTimeMs = Date.now();
  for (let first = 0; first < count; first += insertChunk) {
    const indexes = Array.from({ length: Math.min(insertChunk, count - first) }, (_, k) => first + k);
    const rows = await sql.unsafe<{ id: string }[]>(
      `INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time, next_attempt_at)
       SELECT client_id, alert_id, 'HIGH', 'bench-source', 'bench-alert', context::jsonb, rule_ids::uuid[], to_timestamp($5::float8 / 1000.0),
              now() + interval '1 hour'
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(client_id, alert_id, context, rule_ids)
       RETURNING id`,
      [
        indexes.map((i) => clientIds[i % endpointCount]),
        indexes.map((i) => `${alertPrefix}-${i}`),
        indexes.map((i) => JSON.stringify({ host: `host-${i % 500}.example.internal`, region: "eu-west-1" })),
        indexes.map((i) => `{${ruleIds[i % endpointCount]}}`),
        eventTimeMs,
      ] as never[],
    );
    for (const row of rows) ids.push(String(row.id));
  }
  return ids;
}

/** Deletes the clients' notifications (deliveries cascade). */
async function deleteNotifications(sql: Sql, clientIds: readonly string[]): Promise<void> {
  await retrying(() =>
    sql.unsafe("DELETE FROM notifications WHERE client_id = ANY($1::uuid[])", [clientIds] as never[]),
  );
}

/** Row writes per notification of the clients' rows, counted from the rows (attempts, deliveries, status). */
async function rowWrites(sql: Sql, clientIds: readonly string[]) {
  const [writes] = await retrying(() =>
    sql.unsafe<{ rows: string; claims: string; terminal: string; retry: string; deliveries: string }[]>(
      `SELECT count(*) AS rows, sum(attempts) AS claims,
              count(*) FILTER (WHERE status IN ('SENT', 'FAILED')) AS terminal,
              count(*) FILTER (WHERE status = 'RETRY') AS retry,
              (SELECT count(*) FROM deliveries d WHERE d.notification_id = ANY(array_agg(n.id))) AS deliveries
       FROM notifications n WHERE client_id = ANY($1::uuid[])`,
      [clientIds] as never[],
    ),
  );
  const rows = Number(writes?.rows ?? 0);
  const perNotification = {
    insert: 1,
    claimUpdates: Number(writes?.claims ?? 0) / rows,
    deliveryInserts: Number(writes?.deliveries ?? 0) / rows,
    statusUpdates: (Number(writes?.terminal ?? 0) + Number(writes?.retry ?? 0)) / rows,
  };
  const total =
    perNotification.insert +
    perNotification.claimUpdates +
    perNotification.deliveryInserts +
    perNotification.statusUpdates;
  return { rows, perNotification, total };
}

/**
 * CPU used over a window: this process, all Postgres processes (others' queries too), the broker
 * `./dev` started (NaN when KAFKA_BROKERS points elsewhere) and the whole machine.
 */
interface CpuUse {
  seconds: number;
  benchCpuS: number;
  postgresCpuS: number;
  brokerCpuS: number;
  machineBusyPercent: number;
}

/** Starts measuring; the returned function reads what was used since. */
function startCpuMeter(): () => CpuUse {
  const startMs = performance.now();
  const bench = process.cpuUsage();
  const postgres = new CpuByName("postgres");
  const postgresBefore = postgres.sample(); // a running total, from what each process had used at first sight
  const broker = brokerPid(repoRoot) ?? 0;
  const brokerBefore = cpuSeconds(broker) ?? Number.NaN;
  const machine = machineCpuSeconds();
  return () => {
    const benchNow = process.cpuUsage(bench);
    const machineNow = machineCpuSeconds();
    return {
      seconds: (performance.now() - startMs) / 1000,
      benchCpuS: (benchNow.user + benchNow.system) / 1e6,
      postgresCpuS: postgres.sample() - postgresBefore,
      brokerCpuS: (cpuSeconds(broker) ?? Number.NaN) - brokerBefore,
      machineBusyPercent: ((machineNow.busy - machine.busy) / (machineNow.total - machine.total)) * 100,
    };
  };
}

function describeCpu(use: CpuUse): string {
  const ofOneCore = (cpuS: number) => `${fmt((cpuS / use.seconds) * 100)}%`;
  return (
    `bench process ${ofOneCore(use.benchCpuS)}, postgres ${ofOneCore(use.postgresCpuS)}, ` +
    `broker ${ofOneCore(use.brokerCpuS)} of one core; machine ${fmt(use.machineBusyPercent)}% busy (2 cores, others' work included)`
  );
}

const statementKinds = ["claim", "endpointWork", "recordAttempt"] as const;
type StatementKind = (typeof statementKinds)[number];

/** Wall time of DeliveryStore calls by kind; calls overlapping one another are each counted in full. */
class StatementClock {
  readonly calls: Record<StatementKind, number> = { claim: 0, endpointWork: 0, recordAttempt: 0 };
  readonly totalMs: Record<StatementKind, number> = { claim: 0, endpointWork: 0, recordAttempt: 0 };

  async time<T>(kind: StatementKind, work: () => Promise<T>): Promise<T> {
    const startMs = performance.now();
    try {
      return await work();
    } finally {
      this.calls[kind]++;
      this.totalMs[kind] += performance.now() - startMs;
    }
  }

  meanMs(): Record<StatementKind, number> {
    return Object.fromEntries(
      statementKinds.map((kind) => [kind, this.totalMs[kind] / this.calls[kind]]),
    ) as Record<StatementKind, number>;
  }
}

/** What the webhook channel makes of the sink's 200. */
const delivered = toDeliveryResult(classifyHttpStatus(200, new Headers()), 1, { httpStatus: 200 });

/**
 * Dispatcher.dispatch without the HTTP: the pending endpoints of the claimed rows, each answered
 * 200 at once, the statuses from decideStatus, and one recordAttempt.
 */
async function dispatchDelivered(
  store: DeliveryStore,
  clock: StatementClock,
  claimed: readonly ClaimedNotification[],
): Promise<void> {
  if (claimed.length === 0) return;
  const work = await clock.time("endpointWork", () => store.endpointWork(claimed));
  const attempts: AttemptRecord[] = [];
  const updates: StatusUpdate[] = [];
  for (const notification of claimed) {
    const { pending, deliveredEarlier, permanentEarlier } = work.get(notification.id) ?? {
      pending: [],
      deliveredEarlier: 0,
      permanentEarlier: 0,
    };
    for (const endpoint of pending)
      attempts.push({
        notificationId: notification.id,
        endpointId: endpoint.id,
        channel: endpoint.type,
        outcome: delivered.outcome,
        httpStatus: delivered.httpStatus ?? null,
        smtpReply: null,
        latencyMs: delivered.latencyMs,
        error: null,
      });
    const decision = decideStatus(
      {
        results: pending.map(() => delivered),
        deliveredEarlier,
        permanentEarlier,
        attemptsMade: notification.attempts,
      },
      Math.random,
    );
    updates.push({ notificationId: notification.id, attempts: notification.attempts, decision });
  }
  await clock.time("recordAttempt", () => store.recordAttempt(attempts, updates));
}

interface PostgresCeiling {
  notificationsPerS: number;
  seconds: number;
  batchSize: number;
  dispatchesInFlight: number;
  calls: Record<StatementKind, number>;
  msPerStatement: Record<StatementKind, number>;
  cpu: CpuUse;
}

/**
 * The sender's Postgres work alone (see the header): claims one batch at a time, as the consume loop
 * calls the processor, and waits while DISPATCHES_IN_FLIGHT_MAX dispatches run, as the processor does.
 * Deletes its rows and vacuums afterwards.
 */
async function postgresCeiling(sql: Sql, clients: BenchClients, runId: string): Promise<PostgresCeiling> {
  const batchSize = Number(senderEnv.BATCH_SIZE_MAX);
  const dispatchesInFlight = Number(senderEnv.DISPATCHES_IN_FLIGHT_MAX);
  const pool = connectPostgres({ connectionsMax: senderConnectionsMax });
  const store = new DeliveryStore(pool, senderLeaseMs);
  const clock = new StatementClock();
  try {
    const ids = await insertNotifications(sql, clients, `${runId}-postgres`, notificationCount);
    const cpu = startCpuMeter();
    const running = new Set<Promise<void>>();
    for (let first = 0; first < ids.length; first += batchSize) {
      const claimed = await clock.time("claim", () => store.claim(ids.slice(first, first + batchSize)));
      const dispatch: Promise<void> = dispatchDelivered(store, clock, claimed).finally(() =>
        running.delete(dispatch),
      );
      running.add(dispatch);
      while (running.size >= dispatchesInFlight) await Promise.race(running);
    }
    await Promise.all(running);
    const used = cpu();
    const writes = await rowWrites(sql, clients.clientIds);
    const { claimUpdates, deliveryInserts, statusUpdates } = writes.perNotification;
    if (
      writes.rows !== notificationCount ||
      claimUpdates !== 1 ||
      deliveryInserts !== 1 ||
      statusUpdates !== 1
    )
      throw new Error(`postgres ceiling: not one claim, delivery and status each: ${JSON.stringify(writes)}`);
    return {
      notificationsPerS: notificationCount / used.seconds,
      seconds: used.seconds,
      batchSize,
      dispatchesInFlight,
      calls: clock.calls,
      msPerStatement: clock.meanMs(),
      cpu: used,
    };
  } finally {
    await pool.end({ timeout: 5 });
    await deleteNotifications(sql, clients.clientIds);
    await reclaim(sql, tablesWritten);
  }
}

/** The sink's ceiling with Bun's fetch from this process: `count` POSTs, `concurrency` at a time. */
async function fetchCeiling(sink: Sink, count: number, concurrency: number, body: string): Promise<number> {
  sink.reset();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const response = await fetch(sink.url("/hook/ceiling"), {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
      });
      await response.text();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (sink.count / (sink.lastMs - sink.firstMs)) * 1000;
}

async function main(): Promise<void> {
  const runId = newRunId();
  const topic = `bench-${runId}-sender-in`;
  console.log(
    `sender bench ${runId}: ${fmt(notificationCount)} notifications, ${endpointCount} clients with one webhook ` +
      `endpoint each, broker ${brokers}; sender env ${Object.entries(senderEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}; load average ${loadText()}`,
  );
  const sink = new Sink();
  const sql = connectPostgres({ connectionsMax: 2 });
  const admin = newAdmin();
  const clients = newClients();
  const { clientIds, ruleIds } = clients;
  try {
    await insertClients(sql, runId, sink, clients);

    const postgres = await postgresCeiling(sql, clients, runId);
    const statementMs = postgres.msPerStatement;
    console.log(
      `postgres ${fmt(postgres.notificationsPerS)} notifications/s over ${fmt(postgres.seconds, 2)} s: DeliveryStore ` +
        `in this process, no HTTP, batches of ${fmt(postgres.batchSize)}, ${postgres.dispatchesInFlight} dispatches in flight; ` +
        `mean ms per statement: claim ${fmt(statementMs.claim)}, endpointWork ${fmt(statementMs.endpointWork)}, ` +
        `recordAttempt ${fmt(statementMs.recordAttempt)} (${fmt(postgres.calls.claim)} batches)`,
    );
    console.log(`         ${describeCpu(postgres.cpu)}`);

    const ids = await insertNotifications(sql, clients, runId, notificationCount);
    const utf8 = new TextEncoder();
    const clientKeys = clientIds.map((id) => utf8.encode(id));
    const records: ProduceRecord[] = ids.map((id, i) => ({
      topic,
      key: clientKeys[i % endpointCount],
      value: toBinary(
        NotificationReadySchema,
        create(NotificationReadySchema, {
          notificationId: BigInt(id),
          clientId: clientIds[i % endpointCount] as string,
          alertId: `${runId}-${i}`,
          schemaVersion: 1,
        }),
      ),
    }));
    await createTopics(admin, [topic]);
    const preloadMs = await preload(records);
    console.log(
      `inserted ${fmt(ids.length)} RECEIVED rows and preloaded their notifications.ready in ${fmt(preloadMs)} ms (produce)`,
    );

    sink.reset();
    const run = await runStage(
      "sender",
      {
        INPUT_TOPIC: topic,
        GROUP_ID: `bench-${runId}-sender`,
        SSRF_ALLOW_CIDRS: "127.0.0.1/32",
        ...senderEnv,
      },
      async () => {
        const cpu = startCpuMeter();
        let statusFirstMs = 0;
        let lastChangeMs = performance.now();
        let lastSent = 0;
        for (;;) {
          const [row] = await sql.unsafe<{ sent: string }[]>(
            "SELECT count(*) AS sent FROM notifications WHERE client_id = ANY($1::uuid[]) AND status = 'SENT'",
            [clientIds] as never[],
          );
          const sent = Number(row?.sent ?? 0);
          const now = performance.now();
          if (sent > 0 && statusFirstMs === 0) statusFirstMs = now;
          if (sent >= notificationCount) return { statusFirstMs, statusLastMs: now, cpu: cpu() };
          if (sent !== lastSent) {
            lastChangeMs = now;
            lastSent = sent;
          }
          if (now - lastChangeMs > 60_000)
            throw new Error(`stalled: ${sent} SENT, ${sink.count} deliveries of ${notificationCount}`);
          await Bun.sleep(50);
        }
      },
    );
    const { startedMs, cpuS, batches } = run;
    const { statusFirstMs, statusLastMs, cpu: senderCpu } = run.outcome;
    const stagePeakRss = run.peakRssMiB;
    const deliveryWindowS = (sink.lastMs - sink.firstMs) / 1000;
    const deliveriesPerS = (sink.count - 1) / deliveryWindowS;
    const statusWindowS = (statusLastMs - statusFirstMs) / 1000;
    const statusPerS = notificationCount / ((statusLastMs - sink.firstMs) / 1000);
    const deliveredCount = sink.count;
    console.log(
      `ours     ${fmt(deliveriesPerS)} deliveries/s over ${fmt(deliveryWindowS, 2)} s (${fmt(deliveredCount)} requests); ` +
        `all SENT ${fmt((statusLastMs - startedMs) / 1000, 2)} s after start; ${describeStageUse(run, senderCpu.seconds)}`,
    );
    console.log(`         ${describeBatches(batches, deliveryWindowS)}`);
    console.log(`         ${describeCpu(senderCpu)}, with the sink in the bench process`);
    const writes = await rowWrites(sql, clientIds);
    const { perNotification } = writes;

    // The sink's ceiling from this process: same count, same body size, concurrency 256 x endpoints.
    const body = JSON.stringify({
      notificationId: "1234567",
      clientId: clientIds[0],
      alertId: `${runId}-123456`,
      severity: "HIGH",
      source: "bench-source",
      name: "bench-alert",
      context: { host: "host-123.example.internal", region: "eu-west-1" },
      ruleIds: [ruleIds[0]],
      eventTime: new Date().toISOString(),
    });
    const concurrency = Number(senderEnv.ENDPOINT_CONCURRENCY_MAX) * endpointCount;
    const fetchMeter = startCpuMeter();
    const ceilingPerS = await fetchCeiling(sink, notificationCount, concurrency, body);
    const fetchCpu = fetchMeter();
    console.log(`ceiling  ${fmt(ceilingPerS)} POST/s: Bun fetch -> the same sink, ${concurrency} at a time`);
    console.log(`         ${describeCpu(fetchCpu)}`);

    // One notification is one delivery here (one endpoint each), so both ceilings compare with deliveries/s.
    const oursToFetch = deliveriesPerS / ceilingPerS;
    const oursToPostgres = deliveriesPerS / postgres.notificationsPerS;
    const binding = postgres.notificationsPerS < ceilingPerS ? "postgres" : "fetch";
    console.log(
      `\n${table(
        [
          "figure",
          "ours (sender process)",
          "fetch -> sink ceiling",
          "ours/fetch",
          "postgres ceiling",
          "ours/postgres",
          "target",
        ],
        [
          [
            "webhook deliveries/s",
            fmt(deliveriesPerS),
            fmt(ceilingPerS),
            fmt(oursToFetch, 2),
            fmt(postgres.notificationsPerS),
            fmt(oursToPostgres, 2),
            `>= ${fmt(target)}/s: ${verdict(deliveriesPerS >= target)}`,
          ],
          [
            "status updates (rows)/s",
            fmt(statusPerS),
            "",
            "",
            fmt(postgres.notificationsPerS),
            fmt(statusPerS / postgres.notificationsPerS, 2),
            "",
          ],
        ],
      )}`,
    );
    const ceilingText = (name: string, perS: number, ratio: number) =>
      `${name} ceiling (${fmt(perS)}/s, ours at ${fmt(ratio, 2)} of it)`;
    const postgresText = ceilingText("postgres", postgres.notificationsPerS, oursToPostgres);
    const fetchText = ceilingText("fetch", ceilingPerS, oursToFetch);
    const [lower, higher] = binding === "postgres" ? [postgresText, fetchText] : [fetchText, postgresText];
    console.log(`binding: the ${lower} is lower than the ${higher}`);
    console.log(
      `status rows/s: ${fmt(notificationCount)} rows from the first delivery to the last SENT row ` +
        `(first SENT to last SENT: ${fmt(statusWindowS, 2)} s)`,
    );
    console.log(
      `row writes per notification: ${fmt(writes.total, 2)} = insert ${perNotification.insert} (aggregator) + ` +
        `claim update ${fmt(perNotification.claimUpdates, 2)} + deliveries insert ${fmt(perNotification.deliveryInserts, 2)} + ` +
        `status update ${fmt(perNotification.statusUpdates, 2)} (sender)`,
    );
    finish("sender", {
      runId,
      notificationCount,
      endpointCount,
      senderEnv,
      deliveriesPerS,
      delivered: deliveredCount,
      deliveryWindowS,
      statusPerS,
      statusWindowS,
      ceilingPerS, // the fetch -> sink ceiling
      fetchCpu,

      postgresCeiling: postgres,
      oursToFetch,
      oursToPostgres,
      binding,
      senderCpu,
      writesPerNotification: writes.total,
      perNotification,
      stageCpuS: cpuS,
      batches,
      stagePeakRssMiB: stagePeakRss,
      target,
    });
  } finally {
    await deleteNotifications(sql, clientIds);
    await retrying(() =>
      sql.unsafe("DELETE FROM clients WHERE id = ANY($1::uuid[])", [clientIds] as never[]),
    );
    console.log(`cleanup: ${await reclaim(sql, [...tablesWritten, "clients", "rules", "endpoints"])}`);
    await sql.end({ timeout: 5 });
    admin.close();
    await sink.server.stop(true);
  }
}

await main();
