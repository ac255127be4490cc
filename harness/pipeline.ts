/**
 * A whole pipeline for one test file (or one bench or chaos run): its own topics, groups and Redis
 * keys, every stage its own process (from source by default, or from a compiled binary), a webhook
 * sink, and helpers to create rules, scopes and ingest credentials through the API and to produce
 * alerts (straight to Kafka, or through HTTP ingest when asked for).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { connectPostgres, type Sql } from "../src/adapters/postgres.ts";
import { connectRedis } from "../src/adapters/redis.ts";
import { loadRulesSnapshot } from "../src/adapters/rule-source.ts";
import { readSnapshotBytes, snapshotKeys } from "../src/adapters/snapshot-store.ts";
import { decodeSnapshot, sameGrants, samePolicies, sameRules } from "../src/core/snapshot.ts";
import { AlertNewSchema, Severity } from "../src/gen/alerting/v1/alert_pb.ts";
import { Admin, Producer, withReplication } from "../src/kafka/index.ts";
import { infraUrls } from "../src/runtime/env.ts";
import { createLogger } from "../src/runtime/log.ts";
import { deadLetterTopicSpec } from "../src/runtime/topics.ts";
import { HttpSink } from "../test/channels/sink.ts";
import { uniqueName } from "./names.ts";
import { eventually, type StageName, type StageProcess, startStage, stopStage } from "./stages.ts";

export interface PipelineTopics {
  alertsNew: string;
  ruleChanged: string;
  alertsMatched: string;
  notificationsReady: string;
}

export interface PipelineOptions {
  /** Names the topics, groups and keys; a fresh unique name by default. */
  run?: string;
  /** How a stage starts; `bun src/stages/<stage>/main.ts` by default. */
  command?: (stage: StageName) => string[];
  /** Partitions per event topic (3 by default) and extra topic config. */
  partitions?: number;
  topicConfig?: Record<string, string>;
  /** Replicas per topic (1 by default; 3 on `./dev cluster`, with min.insync.replicas 2). */
  replicationFactor?: number;
  /** Extra environment per stage: the knobs a bench or a chaos run sets. */
  stageEnv?: Partial<Record<StageName, Record<string, string>>>;
  /**
   * When given, the rule-service starts after the other stages with this extra environment, made
   * from them (the console scrapes the other stages' /metrics).
   */
  ruleServiceEnvAfter?: (stages: readonly StageProcess[], topics: PipelineTopics) => Record<string, string>;
  /** How long each stage may take to start (the rule-updater's first snapshot reads every rule). */
  startTimeoutMs?: number;
  /** Also run HTTP ingest (`alert-producer serve`) writing to this pipeline's alerts.new. */
  ingest?: boolean;
  /** The database of every stage and of `sql`: a test file's schema (`db.url`); POSTGRES_URL by default. */
  postgresUrl?: string;
}

/** An ingest credential as the API issued it. */
export interface IngestCredential {
  id: string;
  /** `client:<id>` or `shared:<name>`. */
  scope: string;
  secret: string;
}

export interface Pipeline {
  run: string;
  topics: PipelineTopics;
  adminToken: string;
  sink: HttpSink;
  sql: Sql;
  producer: Producer;
  /** The live processes; a restarted stage (chaos, rolling restarts) replaces its entry. */
  stages: StageProcess[];
  /** A source no other test uses, so only this pipeline's rules match its alerts. */
  source: string;
  /** `http://127.0.0.1:<port>` of a stage's current process. */
  httpUrl(stage: StageName): string;
  api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /**
   * A client with one rule on (severity, source, name), HIGH and `source` unless given (any other rule
   * field, such as group_by, passes through), and a webhook to
   * the sink at /hook/<client id>.
   */
  createClientWithRule(
    name: string,
    rule?: { severity?: string; source?: string } & Record<string, unknown>,
  ): Promise<{ clientId: string; ruleId: string }>;
  /** A shared scope named `name`, granted to `clientIds`, through the API. */
  createSharedScope(name: string, clientIds: readonly string[]): Promise<{ id: string; scope: string }>;
  /** An ingest credential for a client's private scope or a shared scope, through the API. */
  issueIngestCredential(owner: { client_id: string } | { scope_id: string }): Promise<IngestCredential>;
  /** `http://127.0.0.1:<port>` of ingest; throws unless started with `ingest: true`. */
  ingestUrl(): string;
  alert(alertId: string, name: string, severity?: Severity): Uint8Array;
  rulesVersionApplied(): Promise<number>;
  /** Waits until the evaluator applies a snapshot holding every rule, grant and rule setting made so far. */
  awaitRulesApplied(timeoutMs?: number): Promise<boolean>;
  /** kill -9 of a stage's current process, then a new one with the same environment in its place. */
  killAndRestart(name: StageName): Promise<StageProcess>;
  /** Stops every stage with SIGTERM and returns their exit codes; deletes the run's Redis keys. */
  stop(): Promise<(number | null)[]>;
}

export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const run = options.run ?? uniqueName("e2e");
  const topics: PipelineTopics = {
    alertsNew: `${run}.alerts.new`,
    ruleChanged: `${run}.rule.changed`,
    alertsMatched: `${run}.alerts.matched`,
    notificationsReady: `${run}.notifications.ready`,
  };
  const quiet = createLogger("e2e", 40);
  const admin = new Admin(infraUrls.kafkaBrokers, {}, quiet);
  try {
    const specs = Object.values(topics).flatMap((name) => [
      { name, partitions: options.partitions ?? 3, config: options.topicConfig },
      deadLetterTopicSpec(name),
    ]);
    await admin.createTopics(
      options.replicationFactor ? withReplication(specs, options.replicationFactor) : specs,
    );
  } finally {
    admin.close();
  }
  const adminToken = `admin-${crypto.randomUUID()}`;
  const source = `svc-${crypto.randomUUID()}`;
  const keyPrefix = `${run}:rules:`;
  const sink = new HttpSink();
  const postgresUrl = options.postgresUrl ?? infraUrls.postgresUrl;
  const sql = connectPostgres({ url: postgresUrl, idleTimeoutSeconds: 1 });
  const producer = new Producer({ brokers: infraUrls.kafkaBrokers, logger: quiet });
  const shared = { RULES_KEY_PREFIX: keyPrefix, POSTGRES_URL: postgresUrl };
  const environments: Record<StageName, Record<string, string>> = {
    "rule-service": {
      ...shared,
      ADMIN_TOKEN: adminToken,
      RULE_CHANGED_TOPIC: topics.ruleChanged,
      // The sink is on loopback: endpoints pointing at it are refused when saved unless allowed.
      SSRF_ALLOW_CIDRS: "127.0.0.1/32",
    },
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
  const start = (name: StageName, extra: Record<string, string> = {}) =>
    startStage(
      name,
      { ...environments[name], ...options.stageEnv?.[name], ...extra },
      options.command?.(name),
      options.startTimeoutMs,
    );
  const stages: StageProcess[] = [];
  let ingest: StageProcess<"alert-producer"> | undefined;
  const stop = async () => {
    const exitCodes = await Promise.all(stages.map((stage) => stopStage(stage)));
    // After the stages, so that its exit code does not shift theirs.
    if (ingest) exitCodes.push(await stopStage(ingest));
    await producer.close();
    // Bounded: postgres.js can keep a query pending for good after Postgres killed its connection.
    await sql.end({ timeout: 5 });
    await sink.stop();
    const redis = connectRedis();
    try {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    return exitCodes;
  };
  const { ruleServiceEnvAfter } = options;
  const first = (Object.keys(environments) as StageName[]).filter(
    (name) => !(ruleServiceEnvAfter && name === "rule-service"),
  );
  try {
    const started = await Promise.allSettled(first.map((name) => start(name)));
    for (const s of started) if (s.status === "fulfilled") stages.push(s.value);
    const failure = started.find((s) => s.status === "rejected");
    if (failure) throw (failure as PromiseRejectedResult).reason;
    if (ruleServiceEnvAfter) stages.push(await start("rule-service", ruleServiceEnvAfter(stages, topics)));
    if (options.ingest) {
      ingest = await startStage(
        "alert-producer",
        { OUTPUT_TOPIC: topics.alertsNew, POSTGRES_URL: postgresUrl },
        [process.execPath, "src/stages/alert-producer/main.ts", "serve"],
        options.startTimeoutMs,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  // Looked up at each call: a restarted stage (chaos, rolling restarts) replaces its entry in `stages`.
  const current = (name: StageName) => stages.find((s) => s.name === name) as StageProcess;
  const api: Pipeline["api"] = async (method, path, body) => {
    const response = await fetch(`http://127.0.0.1:${current("rule-service").httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: (text === "" ? {} : JSON.parse(text)) as Record<string, unknown>,
    };
  };
  const created = async (what: string, method: string, path: string, body: unknown) => {
    const reply = await api(method, path, body);
    if (reply.status !== 201) throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body;
  };
  const rulesVersionApplied = async (): Promise<number> => {
    const metrics = await (await fetch(`http://127.0.0.1:${current("evaluator").httpPort}/metrics`)).text();
    return Number(/^rules_version_applied\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? -1);
  };
  return {
    run,
    topics,
    adminToken,
    httpUrl: (name) => `http://127.0.0.1:${current(name).httpPort}`,
    sink,
    sql,
    producer,
    stages,
    source,
    api,
    stop,
    async createClientWithRule(name, rule = {}) {
      const client = await created("create client", "POST", "/api/v1/clients", {
        name: uniqueName("client"),
      });
      const clientId = client.id as string;
      const { id: ruleId } = await created("create rule", "POST", "/api/v1/rules", {
        ...rule,
        client_id: clientId,
        severity: rule.severity ?? "HIGH",
        source: rule.source ?? source,
        name,
      });
      await created("create endpoint", "POST", `/api/v1/rules/${ruleId}/endpoints`, {
        type: "webhook",
        value: sink.url(`/hook/${clientId}`),
      });
      return { clientId, ruleId: ruleId as string };
    },
    async createSharedScope(name, clientIds) {
      const scope = await created("create scope", "POST", "/api/v1/scopes", { name });
      for (const clientId of clientIds) {
        await created("grant scope", "POST", `/api/v1/scopes/${scope.id}/grants`, { client_id: clientId });
      }
      return { id: scope.id as string, scope: `shared:${name}` };
    },
    async issueIngestCredential(owner) {
      const credential = await created("issue ingest credential", "POST", "/api/v1/ingest-credentials", {
        name: uniqueName("credential"),
        ...owner,
      });
      return {
        id: credential.id as string,
        scope: credential.scope as string,
        secret: credential.secret as string,
      };
    },
    ingestUrl() {
      if (!ingest) throw new Error("this pipeline runs no ingest: startPipeline({ ingest: true })");
      return `http://127.0.0.1:${ingest.httpPort}`;
    },
    alert(alertId, name, severity = Severity.HIGH) {
      return toBinary(
        AlertNewSchema,
        create(AlertNewSchema, {
          alertId,
          severity,
          source,
          name,
          context: { host: "db-1", note: "<b>&</b>" },
          eventTimeUnixMs: BigInt(Date.now()),
          schemaVersion: 1,
        }),
      );
    },
    async killAndRestart(name) {
      const index = stages.findIndex((stage) => stage.name === name);
      const killed = stages[index];
      if (!killed) throw new Error(`this pipeline runs no ${name}`);
      killed.process.kill("SIGKILL");
      await killed.process.exited;
      const next = await start(name);
      stages[index] = next;
      return next;
    },
    rulesVersionApplied,
    async awaitRulesApplied(timeoutMs = 15_000) {
      // A change committed a moment ago may not be built yet: wait for a stored snapshot that holds
      // what Postgres holds now, then for the evaluator to apply it.
      const redis = connectRedis();
      try {
        return await eventually(async () => {
          const bytes = await readSnapshotBytes(redis, snapshotKeys(keyPrefix));
          if (bytes === undefined) return false;
          const stored = decodeSnapshot(bytes);
          const current = await loadRulesSnapshot(sql);
          const same =
            sameRules(stored, current) && sameGrants(stored, current) && samePolicies(stored, current);
          return same && (await rulesVersionApplied()) >= Number(stored.version);
        }, timeoutMs);
      } finally {
        redis.disconnect();
      }
    },
  };
}
