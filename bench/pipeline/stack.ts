/**
 * The pipeline under bench: test/support/pipeline.ts's startPipeline, copied so that the bench can
 * give each stage its own environment (the knobs it tunes), wait longer for a stage to start (the
 * rule-updater builds its first snapshot from every rule in the shared database, seconds when
 * other runs hold many), use the partition count of `./dev topics`, and delete its Redis keys.
 * Every stage is its own process (test/support/stages.ts), with its own topics, groups and keys.
 */
import { connectPostgres, type Sql } from "../../src/adapters/postgres.ts";
import { connectRedis } from "../../src/adapters/redis.ts";
import { Admin, Producer } from "../../src/kafka/index.ts";
import { infraUrls } from "../../src/runtime/env.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { deadLetterTopicSpec } from "../../src/runtime/topics.ts";
import { type StageName, type StageProcess, startStage, stopStage } from "../../test/support/stages.ts";

export interface Stack {
  run: string;
  topics: { alertsNew: string; ruleChanged: string; alertsMatched: string; notificationsReady: string };
  sql: Sql;
  producer: Producer;
  stages: StageProcess[];
  /** A source no one else uses, so only this run's rules match its alerts. */
  source: string;
  api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Stops every stage (SIGTERM, then SIGKILL) and returns their exit codes; deletes the Redis keys. */
  stop(): Promise<(number | null)[]>;
}

const stageStartTimeoutMs = 90_000;

export async function startStack(options: {
  run: string;
  partitions: number;
  /** Extra environment per stage: the knobs. */
  settings: Record<StageName, Record<string, string>>;
}): Promise<Stack> {
  const { run, partitions, settings } = options;
  const topics = {
    alertsNew: `${run}.alerts.new`,
    ruleChanged: `${run}.rule.changed`,
    alertsMatched: `${run}.alerts.matched`,
    notificationsReady: `${run}.notifications.ready`,
  };
  const admin = new Admin(infraUrls.kafkaBrokers);
  try {
    await admin.createTopics(
      Object.values(topics).flatMap((name) => [
        { name, partitions, config: { "retention.ms": String(30 * 60 * 1000) } },
        deadLetterTopicSpec(name),
      ]),
    );
  } finally {
    admin.close();
  }
  const adminToken = `admin-${crypto.randomUUID()}`;
  const source = `svc-${run}`;
  const keyPrefix = `${run}:rules:`;
  const sql = connectPostgres({ idleTimeoutSeconds: 1 });
  const producer = new Producer({ brokers: infraUrls.kafkaBrokers, logger: createLogger("bench", 40) });
  const shared = { RULES_KEY_PREFIX: keyPrefix };
  const environments: Record<StageName, Record<string, string>> = {
    "rule-service": { ...shared, ADMIN_TOKEN: adminToken, RULE_CHANGED_TOPIC: topics.ruleChanged },
    "rule-updater": { ...shared, INPUT_TOPIC: topics.ruleChanged, GROUP_ID: `${run}-updater` },
    evaluator: {
      ...shared,
      INPUT_TOPIC: topics.alertsNew,
      OUTPUT_TOPIC: topics.alertsMatched,
      GROUP_ID: `${run}-evaluator`,
    },
    aggregator: {
      ...shared,
      INPUT_TOPIC: topics.alertsMatched,
      OUTPUT_TOPIC: topics.notificationsReady,
      GROUP_ID: `${run}-aggregator`,
    },
    sender: {
      ...shared,
      INPUT_TOPIC: topics.notificationsReady,
      GROUP_ID: `${run}-sender`,
      SSRF_ALLOW_CIDRS: "127.0.0.1/32",
    },
  };
  const started = await Promise.allSettled(
    (Object.keys(environments) as StageName[]).map((name) =>
      startStage(name, { ...environments[name], ...settings[name] }, undefined, stageStartTimeoutMs),
    ),
  );
  const stages = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stop = async () => {
    const exitCodes = await Promise.all(stages.map((stage) => stopStage(stage)));
    await producer.close();
    await sql.end();
    const redis = connectRedis();
    try {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    return exitCodes;
  };
  const failure = started.find((s) => s.status === "rejected");
  if (failure) {
    await stop();
    throw (failure as PromiseRejectedResult).reason;
  }
  const ruleService = stages.find((s) => s.name === "rule-service") as StageProcess;
  const api: Stack["api"] = async (method, path, body) => {
    const response = await fetch(`http://127.0.0.1:${ruleService.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  return { run, topics, sql, producer, stages, source, api, stop };
}
