/**
 * Aggregator stage benchmark: `./dev bench aggregator [records]` (default 200k). In one run:
 *
 *   ceiling  the raw Postgres rate of the aggregator's write: batches of BATCH_SIZE_MAX rows,
 *            one after the other on one connection, `INSERT ... SELECT FROM unnest(...) ON CONFLICT
 *            (client_id, scope, alert_id) DO NOTHING RETURNING id, client_id, alert_id` into a scratch
 *            copy of notifications
 *            (`CREATE TABLE ... (LIKE notifications INCLUDING ALL)`, dropped afterwards);
 *   ours     the real aggregator process (its own topics and group) consuming the same rows as
 *            preloaded AlertMatched records, inserting them into the real notifications table and
 *            producing notifications.ready; rows/s from the first output record to the last.
 *
 * Records: unique (client, alert) pairs over 1000 client ids of this run (no duplicates, so every
 * record makes a row and an output), each in its client's private scope, one rule id each, two context
 * entries. Target: ours >= 80% of
 * the ceiling. Afterwards the run deletes its rows (`client_id = ANY(this run's ids)`).
 */
import { connectPostgres } from "../src/adapters/postgres.ts";
import { clientScope } from "../src/core/matching/scope.ts";
import { severityName } from "../src/core/severity.ts";
import { encodeAlertMatched } from "../src/core/wire.ts";
import type { ProduceRecord } from "../src/kafka/index.ts";
import { type BenchAlert, checkAlertEncoding, encodeAlertNew } from "./support/alerts.ts";
import {
  brokers,
  createTopics,
  describeBatches,
  describeStageUse,
  fillRate,
  finish,
  fmt,
  loadText,
  newAdmin,
  newRunId,
  preload,
  ratioRow,
  reclaim,
  retrying,
  runStage,
  table,
  watchTopicFill,
} from "./support/common.ts";

const recordCount = Number(process.argv[2] ?? 200_000);
const clientCount = 1000;
const batchSize = Number(process.env.BATCH_SIZE_MAX ?? 2000);
const target = 0.8;
/** As the aggregator's statement: RECEIVED rows get a safety-net time 60 s out. */
const safetyNetDelayMs = 60_000;

async function main(): Promise<void> {
  const runId = newRunId();
  const scratch = `bench_notifications_${runId}`;
  const topics = { input: `bench-${runId}-agg-in`, output: `bench-${runId}-agg-out` };
  console.log(
    `aggregator bench ${runId}: ${fmt(recordCount)} AlertMatched records over ${fmt(clientCount)} clients, ` +
      `batches of ${fmt(batchSize)} (BATCH_SIZE_MAX), broker ${brokers}; load average ${loadText()}`,
  );
  const clientIds = Array.from({ length: clientCount }, () => crypto.randomUUID());
  const ruleIds = clientIds.map(() => crypto.randomUUID());
  const eventTimeUnixMs = Date.now();
  const alerts: BenchAlert[] = Array.from({ length: recordCount }, (_, i) => ({
    alertId: `${runId}-${i}`,
    severity: 1 + (i % 4),
    source: `source-${i % 3000}`,
    name: `alert-${i % 4000}`,
    context: { host: `host-${i % 500}.example.internal`, region: "eu-west-1" },
    eventTimeUnixMs: eventTimeUnixMs + (i % 60_000),
    scope: clientScope(clientIds[i % clientCount] as string),
  }));
  checkAlertEncoding(alerts[0] as BenchAlert);
  const utf8 = new TextEncoder();
  const clientKeys = clientIds.map((id) => utf8.encode(id));
  const records: ProduceRecord[] = alerts.map((alert, i) => ({
    topic: topics.input,
    key: clientKeys[i % clientCount],
    value: encodeAlertMatched(encodeAlertNew(alert), undefined, {
      clientId: clientIds[i % clientCount] as string,
      ruleIds: [ruleIds[i % clientCount] as string],
    }),
  }));

  const sql = connectPostgres({ connectionsMax: 1 });
  const admin = newAdmin();
  try {
    // The ceiling: the same rows, parameter arrays made before the clock starts.
    await sql.unsafe(`CREATE TABLE ${scratch} (LIKE notifications INCLUDING ALL)`);
    const batches: unknown[][] = [];
    for (let first = 0; first < recordCount; first += batchSize) {
      const indexes = Array.from({ length: Math.min(batchSize, recordCount - first) }, (_, k) => first + k);
      batches.push([
        indexes.map((i) => clientIds[i % clientCount]),
        indexes.map((i) => alerts[i]?.scope),
        indexes.map((i) => alerts[i]?.alertId),
        indexes.map((i) => severityName(alerts[i]?.severity as number)),
        indexes.map((i) => alerts[i]?.source),
        indexes.map((i) => alerts[i]?.name),
        indexes.map((i) => JSON.stringify(alerts[i]?.context)),
        indexes.map((i) => `{${ruleIds[i % clientCount]}}`),
        indexes.map((i) => alerts[i]?.eventTimeUnixMs),
        safetyNetDelayMs,
      ]);
    }
    const ceilingStart = performance.now();
    let ceilingRows = 0;
    for (const parameters of batches) {
      const returned = await sql.unsafe(
        `INSERT INTO ${scratch} (client_id, scope, alert_id, severity, source, name, context, rule_ids, event_time, next_attempt_at)
         SELECT client_id, scope, alert_id, severity, source, name, context::jsonb, rule_ids::uuid[], to_timestamp(event_ms / 1000.0),
                now() + make_interval(secs => $10::float8 / 1000)
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[])
           AS t(client_id, scope, alert_id, severity, source, name, context, rule_ids, event_ms)
         ON CONFLICT (client_id, scope, alert_id, route, episode, kind) DO NOTHING
         RETURNING id, client_id, alert_id`,
        parameters as never[],
      );
      ceilingRows += returned.length;
    }
    const ceilingMs = performance.now() - ceilingStart;
    if (ceilingRows !== recordCount) throw new Error(`ceiling inserted ${ceilingRows} of ${recordCount}`);
    const ceilingRate = (ceilingRows / ceilingMs) * 1000;
    console.log(`ceiling  ${fmt(ceilingRate)} rows/s (${fmt(ceilingMs)} ms for ${fmt(ceilingRows)} rows)`);
    await sql.unsafe(`DROP TABLE ${scratch}`);
    batches.length = 0;

    await createTopics(admin, Object.values(topics));
    const preloadMs = await preload(records);
    console.log(
      `preloaded ${fmt(recordCount)} records (${records[0]?.value?.byteLength} bytes each) in ${fmt(preloadMs)} ms`,
    );
    records.length = 0;

    const run = await runStage(
      "aggregator",
      {
        INPUT_TOPIC: topics.input,
        OUTPUT_TOPIC: topics.output,
        GROUP_ID: `bench-${runId}-aggregator`,
        BATCH_SIZE_MAX: String(batchSize),
      },
      () => watchTopicFill(admin, topics.output, recordCount),
    );
    const watch = run.outcome;
    const windowS = (watch.lastMs - watch.firstMs) / 1000;
    const ours = {
      rowsPerS: fillRate(watch),
      windowS,
      wallS: (watch.lastMs - run.startedMs) / 1000,
      cpuS: run.cpuS,
      peakRssMiB: run.peakRssMiB,
      batches: run.batches,
    };
    console.log(
      `ours     ${fmt(ours.rowsPerS)} rows/s over ${fmt(windowS, 2)} s; ${describeStageUse(run, windowS)}`,
    );
    console.log(`         ${describeBatches(ours.batches, windowS)}`);
    const [row] = await sql.unsafe<{ rows: string }[]>(
      "SELECT count(*) AS rows FROM notifications WHERE client_id = ANY($1::uuid[])",
      [clientIds] as never[],
    );
    const inserted = Number(row?.rows ?? 0);
    if (inserted !== recordCount) throw new Error(`notifications holds ${inserted} rows, not ${recordCount}`);

    const ratio = ours.rowsPerS / ceilingRate;
    console.log(
      `\n${table(
        ["rows/s", "ours (aggregator process)", "raw INSERT ceiling", "ours/ceiling", "target"],
        [ratioRow(`${fmt(recordCount)} rows`, ours.rowsPerS, ceilingRate, target, "ceiling")],
      )}`,
    );
    finish("aggregator", {
      runId,
      recordCount,
      batchSize,
      ceiling: { rowsPerS: ceilingRate, ms: ceilingMs },
      ours,
      ratio,
      target,
    });
  } finally {
    await retrying(() => sql.unsafe(`DROP TABLE IF EXISTS ${scratch}`));
    await retrying(() =>
      sql.unsafe("DELETE FROM notifications WHERE client_id = ANY($1::uuid[])", [clientIds] as never[]),
    );
    console.log(`cleanup: ${await reclaim(sql, ["notifications"])}`);
    await sql.end({ timeout: 5 });
    admin.close();
  }
}

await main();
