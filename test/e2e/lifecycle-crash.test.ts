/**
 * kill -9 of the aggregator, then of the evaluator, while a stream of Alertmanager alerts flows through
 * the whole pipeline (every stage its own process, real broker, Postgres and Redis): each alert fires,
 * is re-sent with a new startsAt, resolves, fires again and resolves again. Every kill leaves a batch
 * redelivered to a replacement (older submissions after newer ones). Afterwards, counted per alert:
 * exactly the two episodes' firing and resolved rows, none lost, none extra, each notified episode
 * resolved exactly once, and every alert state resolved at episode 2.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { TopicReader } from "../../harness/kafka.ts";
import { type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually, type StageName } from "../../harness/stages.ts";
import { AlertNewSchema, AlertStatus, Severity } from "../../src/gen/alerting/v1/alert_pb.ts";
import type { ProduceRecord } from "../../src/kafka/index.ts";

const alertsCount = 150;
const roundPauseMs = 1500;
const alertName = "LifecycleCrash";

const db = useTestSchema("e2e_lifecycle_crash");
let pipeline: Pipeline;
let clientId = "";

beforeAll(async () => {
  pipeline = await startPipeline({
    postgresUrl: db.url,
    partitions: 3,
    // Small batches, several in flight, and offsets committed only every few rounds, so that each
    // kill leaves rounds already applied to be redelivered: older submissions after newer ones.
    stageEnv: {
      aggregator: { BATCH_SIZE_MAX: "50", BATCH_WAIT_MS: "20", COMMIT_INTERVAL_MS: "5000" },
      evaluator: { BATCH_SIZE_MAX: "50", BATCH_WAIT_MS: "20", COMMIT_INTERVAL_MS: "5000" },
    },
  });
  clientId = (await pipeline.createClientWithRule(alertName)).clientId;
  expect(await pipeline.awaitRulesApplied()).toBe(true);
}, 90_000);

afterAll(async () => {
  const exitCodes = await pipeline.stop();
  expect(exitCodes.every((code) => code === 0)).toBe(true);
});

/** One submission of alert `index` at step `step` of its life (0-5), as ingest would make it. */
function submission(index: number, step: number, baseMs: number): ProduceRecord {
  const episode = step < 3 ? 0 : 1;
  const startsAtMs = baseMs + episode * 60_000 + index;
  const phase = step % 3; // 0 fires, 1 re-sends with a new startsAt, 2 resolves
  const alertId = `am-${pipeline.run}-${index}`;
  const alert = create(AlertNewSchema, {
    alertId,
    severity: Severity.HIGH,
    source: pipeline.source,
    name: alertName,
    context: { instance: `host-${index}` },
    eventTimeUnixMs: BigInt(startsAtMs + (phase === 0 ? 0 : 1000)),
    schemaVersion: 1,
    status: phase === 2 ? AlertStatus.RESOLVED : AlertStatus.FIRING,
    endsAtUnixMs: phase === 2 ? BigInt(startsAtMs + 1500) : 0n,
  });
  return { topic: pipeline.topics.alertsNew, key: alertId, value: toBinary(AlertNewSchema, alert) };
}

interface Row {
  alert_id: string;
  episode: number;
  kind: string;
}

test("kill -9 of aggregator and evaluator mid-stream: 0 lost, 0 extra, one resolved per episode", async () => {
  const baseMs = Date.now() - 10 * 60_000;
  // What the aggregator was given: beyond one record per submission, the evaluator's redeliveries.
  const matched = new TopicReader(pipeline.topics.alertsMatched);
  // Which stage is killed right after which round was sent: the aggregator, then the evaluator.
  const kills: Partial<Record<number, StageName>> = {
    1: "aggregator",
    2: "evaluator",
    4: "aggregator",
    5: "evaluator",
  };
  const restarts: Promise<unknown>[] = [];
  for (let step = 0; step < 6; step++) {
    await pipeline.producer.send(
      Array.from({ length: alertsCount }, (_, index) => submission(index, step, baseMs)),
    );
    const stage = kills[step];
    if (stage !== undefined) {
      await Bun.sleep(Math.random() * 200); // while the round is being processed
      restarts.push(pipeline.killAndRestart(stage));
    }
    await Bun.sleep(roundPauseMs);
  }
  await Promise.all(restarts);

  const expectedRows = alertsCount * 4;
  const rowsNow = () =>
    pipeline.sql<Row[]>`SELECT alert_id, episode, kind FROM notifications WHERE client_id = ${clientId}`;
  const settled = await eventually(async () => (await rowsNow()).length >= expectedRows, 90_000);
  await Bun.sleep(2000); // anything extra still in flight
  const rows = await rowsNow();
  const expected = new Set(
    Array.from({ length: alertsCount }, (_, index) =>
      [1, 2].flatMap((episode) =>
        ["firing", "resolved"].map((kind) => `am-${pipeline.run}-${index} ${episode} ${kind}`),
      ),
    ).flat(),
  );
  const found = rows.map((r) => `${r.alert_id} ${r.episode} ${r.kind}`);
  const lost = [...expected].filter((key) => !found.includes(key));
  const extra = found.filter((key) => !expected.has(key));
  const duplicates = found.length - new Set(found).size;
  // Per notified episode: its kinds, which must be exactly one firing and one resolved.
  const episodes = new Map<string, string[]>();
  for (const r of rows) {
    const key = `${r.alert_id} ${r.episode}`;
    episodes.set(key, [...(episodes.get(key) ?? []), r.kind].sort());
  }
  const badEpisodes = [...episodes].filter(([, kinds]) => kinds.join() !== "firing,resolved");
  const states = await pipeline.sql<{ state: string; episode: number; n: number }[]>`
    SELECT state, episode, count(*)::int AS n FROM alert_states WHERE client_id = ${clientId}
    GROUP BY state, episode`;
  await matched.close();
  console.log(
    JSON.stringify({
      rows: rows.length,
      expectedRows,
      lost: lost.length,
      extra: extra.length,
      duplicates,
      settled,
      matchedRecords: matched.records.length,
      submissions: alertsCount * 6,
    }),
  );
  expect({
    lost: lost.slice(0, 5),
    extra: extra.slice(0, 5),
    duplicates,
    badEpisodes: badEpisodes.slice(0, 5),
  }).toEqual({ lost: [], extra: [], duplicates: 0, badEpisodes: [] });
  expect([...states]).toEqual([{ state: "resolved", episode: 2, n: alertsCount }]);
  // The kills did cut in: the evaluator redelivered rounds it had already forwarded.
  expect(matched.records.length).toBeGreaterThan(alertsCount * 6);
}, 240_000);
