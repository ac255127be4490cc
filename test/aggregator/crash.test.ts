/**
 * kill -9 of aggregator processes while a stream of AlertMatched flows, aimed at the window between
 * the notifications insert and the notifications.ready produce: each kill hits a process right after
 * the rows of one of its partitions appeared. Replacements join the same group and resume from the
 * last commit. Afterwards: one row per (client, alert), every expected pair present, and every row
 * announced on notifications.ready at least once.
 *
 * Several processes share the group because a killed member keeps its partitions until its session
 * times out (10 s): with three processes, three kills fit in one such pause instead of one.
 */
import { afterAll, expect, test } from "bun:test";
import { countDeliveries } from "../../harness/invariants.ts";
import { brokers, quiet, TopicReader } from "../../harness/kafka.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageProcess, stopStage } from "../../harness/stages.ts";
import { type ProduceRecord, Producer } from "../../src/kafka/index.ts";
import {
  aggregatorTopics,
  alertMatched,
  decodeReady,
  insertClientWithRule,
  ownedPartitions,
  startAggregator,
} from "./support.ts";

const partitions = 6;
const processes = 3;
const kills = 5;
const total = 2000;
const upFront = 600; // a backlog, so the first batches are large
const streamMs = 12_000;
const clientsCount = 4;

const db = useTestSchema("aggregator_crash");
const { sql } = db;
const producer = new Producer({ brokers, logger: quiet });
const everyStage: StageProcess[] = [];
const clientIds: string[] = [];

afterAll(async () => {
  for (const stage of everyStage) if (stage.process.exitCode === null) stage.process.kill("SIGKILL");
  await producer.close();
});

/** One aggregator process; `since` is a database id: rows above it were inserted after it started. */
class Member {
  alive = true;

  constructor(
    readonly stage: StageProcess,
    readonly since: string,
  ) {
    everyStage.push(stage);
  }

  owned(): Set<number> {
    return ownedPartitions(this.stage);
  }
}

interface Kill {
  kill: number;
  atMs: number;
  pid: number;
  partitions: number[];
  /** Rows this process inserted that had no notifications.ready 1 s after the kill: window hits. */
  unannounced?: number;
}

test("kill -9 between insert and produce: no duplicate rows, nothing lost, every row announced", async () => {
  const startedAt = performance.now();
  const topics = await aggregatorTopics("agg-crash", partitions);
  for (let i = 0; i < clientsCount; i++)
    clientIds.push((await insertClientWithRule(sql, "agg-crash")).clientId);
  const ruleIds = (
    await sql<{ id: string }[]>`SELECT id::text FROM rules WHERE client_id = ANY(${clientIds}::uuid[])`
  ).map((r) => r.id);
  const records: ProduceRecord[] = Array.from({ length: total }, (_, i) => {
    const clientId = clientIds[i % clientsCount] as string;
    return {
      topic: topics.input,
      partition: i % partitions,
      key: clientId,
      value: alertMatched({
        clientId,
        alertId: `crash-${i}`,
        ruleIds: [ruleIds[i % ruleIds.length] as string],
      }),
    };
  });
  const partitionOf = (alertId: string) => Number(alertId.slice("crash-".length)) % partitions;
  const env = { BATCH_SIZE_MAX: "2000", BATCH_WAIT_MS: "100" };
  const ready = new TopicReader(topics.output);
  const announced = () => new Set(ready.records.map((r) => String(decodeReady(r).notificationId)));

  const members = (
    await Promise.all(Array.from({ length: processes }, () => startAggregator(db, topics, env)))
  ).map((stage) => new Member(stage, "0"));
  // Every process owns partitions before the kills start, so one session timeout covers several kills.
  expect(await eventually(() => members.every((m) => m.owned().size > 0), 20_000)).toBe(true);
  await producer.send(records.slice(0, upFront));
  const stream = (async () => {
    const rest = records.slice(upFront);
    const chunk = 20;
    const pauseMs = streamMs / (rest.length / chunk);
    for (let i = 0; i < rest.length; i += chunk) {
      await producer.send(rest.slice(i, i + chunk));
      await Bun.sleep(pauseMs);
    }
  })();

  const killLog: Kill[] = [];
  const measurements: Promise<void>[] = [];
  const replacements: Promise<void>[] = [];
  let lastId = "0";
  const killDeadline = performance.now() + 45_000;
  while (killLog.length < kills && performance.now() < killDeadline) {
    const fresh = await sql<{ id: string; alert_id: string }[]>`
      SELECT id::text, alert_id FROM notifications
      WHERE client_id = ANY(${clientIds}::uuid[]) AND id > ${lastId}::bigint ORDER BY id`;
    if (fresh.length > 0) lastId = (fresh.at(-1) as { id: string }).id;
    const freshPartitions = new Set(fresh.map((r) => partitionOf(r.alert_id)));
    const target = members.find((m) => m.alive && [...m.owned()].some((p) => freshPartitions.has(p)));
    if (!target) {
      await Bun.sleep(2);
      continue;
    }
    // Just after one of its batches was inserted: its produce and commit are most likely still ahead.
    await Bun.sleep(Math.random() * 10);
    target.stage.process.kill("SIGKILL");
    target.alive = false;
    const kill: Kill = {
      kill: killLog.length + 1,
      atMs: Math.round(performance.now() - startedAt),
      pid: target.stage.process.pid,
      partitions: [...target.owned()].sort(),
    };
    killLog.push(kill);
    const since = lastId;
    replacements.push(
      startAggregator(db, topics, env).then((stage) => {
        members.push(new Member(stage, since));
      }),
    );
    // Nobody owns those partitions until the dead member's session times out, so the rows this
    // process inserted that are still missing from notifications.ready a second later are what the
    // kill cut off between insert and produce.
    measurements.push(
      Bun.sleep(1000).then(async () => {
        const seen = announced();
        const rows = await sql<{ id: string; alert_id: string }[]>`
          SELECT id::text, alert_id FROM notifications
          WHERE client_id = ANY(${clientIds}::uuid[]) AND id > ${target.since}::bigint`;
        kill.unannounced = rows.filter(
          (r) => kill.partitions.includes(partitionOf(r.alert_id)) && !seen.has(r.id),
        ).length;
      }),
    );
  }
  await Promise.all([stream, ...measurements, ...replacements]);
  expect(killLog).toHaveLength(kills);

  // Recovery: the replacements take the partitions over and redo what was not committed.
  const rowsNow = () =>
    sql<{ id: string; client_id: string; alert_id: string }[]>`
      SELECT id::text, client_id::text, alert_id FROM notifications WHERE client_id = ANY(${clientIds}::uuid[])`;
  let rows = await rowsNow();
  const recoveryDeadline = performance.now() + 30_000;
  while (performance.now() < recoveryDeadline) {
    rows = await rowsNow();
    const seen = announced();
    if (rows.length >= total && rows.every((r) => seen.has(r.id))) break;
    await Bun.sleep(200);
  }
  await Bun.sleep(300);

  const duplicatePairs = await sql`
    SELECT client_id, alert_id, count(*)::int AS n FROM notifications
    WHERE client_id = ANY(${clientIds}::uuid[]) GROUP BY client_id, alert_id HAVING count(*) > 1`;
  const pairs = countDeliveries(
    records.map((_, i) => `${clientIds[i % clientsCount]}/crash-${i}`),
    rows.map((r) => `${r.client_id}/${r.alert_id}`),
  );
  const readyIds = ready.records.map((r) => String(decodeReady(r).notificationId));
  const announcements = countDeliveries(
    rows.map((r) => r.id),
    readyIds,
  );
  const survivors = members.filter((m) => m.alive);
  const exitCodes = await Promise.all(survivors.map((m) => stopStage(m.stage)));
  await ready.close();

  const summary = {
    kills: killLog,
    windowHits: killLog.filter((k) => (k.unannounced ?? 0) > 0).length,
    rowsCutOffBeforeProduce: killLog.reduce((sum, k) => sum + (k.unannounced ?? 0), 0),
    rows: rows.length,
    duplicateRows: duplicatePairs.length,
    readyRecords: readyIds.length,
    rowsAnnouncedMoreThanOnce: announcements.duplicated.length,
    seconds: Math.round(performance.now() - startedAt) / 1000,
  };
  console.log(`aggregator crash test: ${JSON.stringify(summary)}`);

  // The test exercised what it is about: at least one kill cut rows off between insert and produce.
  expect(summary.windowHits).toBeGreaterThan(0);
  expect([...duplicatePairs]).toEqual([]);
  expect(pairs.lost).toEqual([]);
  expect(pairs.unexpected).toEqual([]);
  expect(announcements.lost).toEqual([]);
  expect(announcements.unexpected).toEqual([]);
  expect(exitCodes).toEqual(survivors.map(() => 0));
}, 90_000);
