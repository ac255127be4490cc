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
 * the same run, and the lower one is the one that binds the sender (both in support/sender-work.ts):
 *
 *   postgres  (first, before the sender's rows exist) the sender's own Postgres work with no HTTP
 *             and no Kafka: the same count of fresh RECEIVED rows for the same clients through the
 *             real DeliveryStore, batches of BATCH_SIZE_MAX with DISPATCHES_IN_FLIGHT_MAX dispatches
 *             in flight. Reports notifications/s and the mean wall ms per statement kind. Its rows
 *             are then deleted and the tables vacuumed, so the sender starts from the same table state.
 *   fetch     (after the sender) the sink's own ceiling: no peer process exists for a webhook
 *             fan-out here, so the bench POSTs the same count of bodies to the same sink with Bun's
 *             fetch at the sender's concurrency.
 *
 * Then the clients' CPU per POST (issue 18's target: fetch's >= 2 x Http1Client's): both post the
 * same count to a raw sink in its own process (support/raw-sink.ts), so this process's CPU is the
 * client's alone.
 *
 * Beside each measurement: the CPU it took, as % of one core, from this process (the sink during the
 * sender's run), from Postgres (all its processes, so others' queries too) and from the broker, and
 * the machine's busy share (2 cores, shared with other runs); the sender's own CPU is on its line.
 * The JSON result holds both ceilings, the ratios, the binding one and the CPU figures.
 * Target: >= 20k deliveries/s. Afterwards the run deletes its notifications (deliveries cascade)
 * and its clients (rules and endpoints cascade).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { connectPostgres } from "../src/adapters/postgres.ts";
import { NotificationReadySchema } from "../src/gen/alerting/v1/alert_pb.ts";
import type { ProduceRecord } from "../src/kafka/index.ts";
import { webhookCeiling } from "./pipeline/ceilings.ts";
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
  runStage,
  table,
  verdict,
} from "./support/common.ts";
import { describeCpu, startCpuMeter } from "./support/cpu.ts";
import { RawSinkProcess } from "./support/raw-sink-process.ts";
import {
  deleteClients,
  fetchCeiling,
  insertClients,
  insertReceived,
  newClients,
  rowWrites,
  senderStatementsCeiling,
} from "./support/sender-work.ts";

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

/** fetch and Http1Client POSTing `count` bodies to a raw sink process: requests/s, client CPU us per POST. */
async function clientCpuPerPost(options: { count: number; concurrency: number; body: string }) {
  const sink = new RawSinkProcess();
  try {
    const url = `http://127.0.0.1:${await sink.port()}/hook/ceiling`;
    const fetch = await fetchCeiling(url, options);
    const http1 = await webhookCeiling(url, options);
    const usPerPost = (cpu: { benchCpuS: number }) => (cpu.benchCpuS / options.count) * 1e6;
    return { fetch, http1, fetchUs: usPerPost(fetch.cpu), http1Us: usPerPost(http1.cpu) };
  } finally {
    await sink.stop();
  }
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
  const clients = newClients(endpointCount);
  const { clientIds, ruleIds } = clients;
  try {
    await insertClients(sql, `bench-sender-${runId}-`, (id) => sink.url(`/hook/${id}`), clients);

    const postgres = await senderStatementsCeiling(sql, clients, {
      alertPrefix: `${runId}-postgres`,
      count: notificationCount,
      batchSize: Number(senderEnv.BATCH_SIZE_MAX),
      dispatchesInFlight: Number(senderEnv.DISPATCHES_IN_FLIGHT_MAX),
    });
    const statementMs = postgres.msPerStatement;
    console.log(
      `postgres ${fmt(postgres.notificationsPerS)} notifications/s over ${fmt(postgres.seconds, 2)} s: DeliveryStore ` +
        `in this process, no HTTP, batches of ${fmt(postgres.batchSize)}, ${postgres.dispatchesInFlight} dispatches in flight; ` +
        `mean ms per statement: claim with endpoints ${fmt(statementMs.claim)}, ` +
        `recordAttempt ${fmt(statementMs.recordAttempt)} (${fmt(postgres.calls.claim)} batches)`,
    );
    console.log(`         ${describeCpu(postgres.cpu)}`);

    const ids = await insertReceived(sql, clients, runId, notificationCount);
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
    const { requestsPerS: ceilingPerS, cpu: fetchCpu } = await fetchCeiling(sink.url("/hook/ceiling"), {
      count: notificationCount,
      concurrency,
      body,
    });
    console.log(`ceiling  ${fmt(ceilingPerS)} POST/s: Bun fetch -> the same sink, ${concurrency} at a time`);
    console.log(`         ${describeCpu(fetchCpu)}`);
    // The target compares the clients' CPU per POST, so for it both clients post to the raw sink
    // in its own process: this process's CPU is then the client's alone.
    const clientCpu = await clientCpuPerPost({ count: notificationCount, concurrency, body });
    console.log(
      `clients  fetch ${fmt(clientCpu.fetch.requestsPerS)} POST/s, Http1Client (the sender's) ${fmt(clientCpu.http1.requestsPerS)} ` +
        `POST/s to a raw sink in its own process, ${concurrency} at a time; client CPU per POST: fetch ` +
        `${fmt(clientCpu.fetchUs, 1)} us, Http1Client ${fmt(clientCpu.http1Us, 1)} us (fetch / Http1Client ` +
        `${fmt(clientCpu.fetchUs / clientCpu.http1Us, 2)}, target >= 2: ${verdict(clientCpu.fetchUs >= 2 * clientCpu.http1Us)})`,
    );

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
      clientCpu,

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
    await deleteClients(sql, clientIds);
    console.log(
      `cleanup: ${await reclaim(sql, ["notifications", "deliveries", "clients", "rules", "endpoints"])}`,
    );
    await sql.end({ timeout: 5 });
    admin.close();
    await sink.server.stop(true);
  }
}

await main();
