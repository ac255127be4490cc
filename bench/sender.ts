/**
 * Sender stage benchmark: `./dev bench sender [notifications]` (default 100k). The real sender
 * process (its own topic and group) takes preloaded notifications.ready records for rows this run
 * inserted directly (status RECEIVED, safety net an hour out, so only the consume path claims them),
 * claims them, POSTs one signed webhook each to a local Bun.serve sink answering 200, and records
 * deliveries and statuses. A handful of bench clients, each with one rule and one webhook endpoint.
 *
 * Figures: webhook deliveries/s at the sink (first request to last), status updates/s (first SENT
 * row seen to all SENT, polled), and the row writes per notification across aggregator and sender:
 * insert + claim update(s) + deliveries insert(s) + status update(s). No peer process exists for a
 * webhook fan-out here, so the sink's own ceiling is measured in the same run instead: the bench
 * POSTs the same count of bodies to the same sink with Bun's fetch at the same concurrency.
 * Target: >= 20k deliveries/s. Afterwards the run deletes its notifications (deliveries cascade)
 * and its clients (rules and endpoints cascade).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { connectPostgres } from "../src/adapters/postgres.ts";
import { NotificationReadySchema } from "../src/gen/alerting/v1/alert_pb.ts";
import type { ProduceRecord } from "../src/kafka/index.ts";
import {
  brokers,
  createTopics,
  describeBatches,
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
};
const insertChunk = 20_000;

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
  const clientIds = Array.from({ length: endpointCount }, () => crypto.randomUUID());
  const ruleIds = clientIds.map(() => crypto.randomUUID());
  try {
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
    const ids: string[] = [];
    const eventTimeMs = Date.now();
    for (let first = 0; first < notificationCount; first += insertChunk) {
      const indexes = Array.from(
        { length: Math.min(insertChunk, notificationCount - first) },
        (_, k) => first + k,
      );
      const rows = await sql.unsafe<{ id: string }[]>(
        `INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids, event_time, next_attempt_at)
         SELECT client_id, alert_id, 'HIGH', 'bench-source', 'bench-alert', context::jsonb, rule_ids::uuid[], to_timestamp($5::float8 / 1000.0),
                now() + interval '1 hour'
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(client_id, alert_id, context, rule_ids)
         RETURNING id`,
        [
          indexes.map((i) => clientIds[i % endpointCount]),
          indexes.map((i) => `${runId}-${i}`),
          indexes.map((i) =>
            JSON.stringify({ host: `host-${i % 500}.example.internal`, region: "eu-west-1" }),
          ),
          indexes.map((i) => `{${ruleIds[i % endpointCount]}}`),
          eventTimeMs,
        ] as never[],
      );
      for (const row of rows) ids.push(String(row.id));
    }
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
          if (sent >= notificationCount) return { statusFirstMs, statusLastMs: now };
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
    const { statusFirstMs, statusLastMs } = run.outcome;
    const stagePeakRss = run.peakRssMiB;
    const deliveryWindowS = (sink.lastMs - sink.firstMs) / 1000;
    const deliveriesPerS = (sink.count - 1) / deliveryWindowS;
    const statusWindowS = (statusLastMs - statusFirstMs) / 1000;
    const statusPerS = notificationCount / ((statusLastMs - sink.firstMs) / 1000);
    const delivered = sink.count;
    console.log(
      `ours     ${fmt(deliveriesPerS)} deliveries/s over ${fmt(deliveryWindowS, 2)} s (${fmt(delivered)} requests); ` +
        `all SENT ${fmt((statusLastMs - startedMs) / 1000, 2)} s after start; stage CPU ${fmt(cpuS, 1)} s, peak RSS ${stagePeakRss} MiB`,
    );

    console.log(`         ${describeBatches(batches, deliveryWindowS)}`);
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
    const rowCount = Number(writes?.rows ?? 0);
    const perNotification = {
      insert: 1,
      claimUpdates: Number(writes?.claims ?? 0) / rowCount,
      deliveryInserts: Number(writes?.deliveries ?? 0) / rowCount,
      statusUpdates: (Number(writes?.terminal ?? 0) + Number(writes?.retry ?? 0)) / rowCount,
    };
    const writesPerNotification =
      perNotification.insert +
      perNotification.claimUpdates +
      perNotification.deliveryInserts +
      perNotification.statusUpdates;

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
    const ceilingPerS = await fetchCeiling(sink, notificationCount, concurrency, body);
    console.log(`ceiling  ${fmt(ceilingPerS)} POST/s: Bun fetch -> the same sink, ${concurrency} at a time`);

    console.log(
      `\n${table(
        ["figure", "ours (sender process)", "fetch -> sink ceiling", "ours/ceiling", "target"],
        [
          [
            "webhook deliveries/s",
            fmt(deliveriesPerS),
            fmt(ceilingPerS),
            fmt(deliveriesPerS / ceilingPerS, 2),
            `>= ${fmt(target)}/s: ${verdict(deliveriesPerS >= target)}`,
          ],
          ["status updates (rows)/s", fmt(statusPerS), "", "", ""],
        ],
      )}`,
    );
    console.log(
      `status rows/s: ${fmt(notificationCount)} rows from the first delivery to the last SENT row ` +
        `(first SENT to last SENT: ${fmt(statusWindowS, 2)} s)`,
    );
    console.log(
      `row writes per notification: ${fmt(writesPerNotification, 2)} = insert ${perNotification.insert} (aggregator) + ` +
        `claim update ${fmt(perNotification.claimUpdates, 2)} + deliveries insert ${fmt(perNotification.deliveryInserts, 2)} + ` +
        `status update ${fmt(perNotification.statusUpdates, 2)} (sender)`,
    );
    finish("sender", {
      runId,
      notificationCount,
      endpointCount,
      senderEnv,
      deliveriesPerS,
      delivered,
      deliveryWindowS,
      statusPerS,
      statusWindowS,
      ceilingPerS,
      writesPerNotification,
      perNotification,
      stageCpuS: cpuS,
      batches,
      stagePeakRssMiB: stagePeakRss,
      target,
    });
  } finally {
    await retrying(() =>
      sql.unsafe("DELETE FROM notifications WHERE client_id = ANY($1::uuid[])", [clientIds] as never[]),
    );
    await retrying(() =>
      sql.unsafe("DELETE FROM clients WHERE id = ANY($1::uuid[])", [clientIds] as never[]),
    );
    console.log(
      `cleanup: ${await reclaim(sql, ["notifications", "deliveries", "clients", "rules", "endpoints"])}`,
    );
    await sql.end({ timeout: 5 });
    admin.close();
    await sink.server.stop(true);
  }
}

await main();
