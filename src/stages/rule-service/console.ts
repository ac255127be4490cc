/**
 * The JSON routes only the operator console needs, under /api/v1/console, as rows of the rule
 * service's route table: the same authentication, rate limits and OpenAPI document as the rest of
 * the API. The page itself and its server-side helpers (stage scraper, load runner) live in
 * src/console; everything else the page shows comes from the ordinary /api/v1 API.
 *
 * Configuration (environment of the rule-service):
 *   CONSOLE_STAGE_METRICS        evaluator=http://127.0.0.1:9102,sender=... (stages to scrape)
 *   CONSOLE_SCRAPE_INTERVAL_MS   2000; CONSOLE_SAMPLES_MAX 450 (15 min at 2 s)
 *   CONSOLE_ALERTS_TOPIC         where the load panel sends alerts (alerts.new)
 *   CONSOLE_NOTIFICATIONS_TOPIC  where a test notification's notifications.ready goes
 *   CONSOLE_DEAD_LETTER_TOPICS   comma-separated; default: the four pipeline topics' .dlq
 *   CONSOLE_LOAD_RATE_MAX        5000 alerts/s; CONSOLE_LOAD_DURATION_MAX_S 600
 */
import { listDeadLetters, replayDeadLetters } from "../../adapters/dead-letters.ts";
import { notificationReadyRecord } from "../../adapters/notification-ready.ts";
import { insertNotifications } from "../../adapters/notification-store.ts";
import type { Sql } from "../../adapters/postgres.ts";
import { LoadInputError, LoadRunner } from "../../console/load-runner.ts";
import {
  parseStageTargets,
  type StageScraper,
  type StageTarget,
  startStageScraper,
} from "../../console/stage-metrics.ts";
import { Admin, type Producer } from "../../kafka/index.ts";
import { ConfigError, envInt, envString } from "../../runtime/config.ts";
import { createLogger, type Logger } from "../../runtime/log.ts";
import { deadLetterTopic, topicNames } from "../../runtime/topics.ts";
import { scopeOf } from "./auth.ts";
import { badRequest, HttpError } from "./http.ts";
import { notificationsShown, shownStatus } from "./notifications-store.ts";
import { defineRoute, type Route } from "./route.ts";
import { isUuid } from "./schema.ts";

export interface ConsoleSettings {
  stageTargets: StageTarget[];
  scrapeIntervalMs: number;
  samplesMax: number;
  alertsTopic: string;
  notificationsTopic: string;
  deadLetterTopics: string[];
  loadRateMax: number;
  loadDurationMaxS: number;
}

/** Reads every CONSOLE_* setting; a bad one throws ConfigError naming it. */
export function consoleSettings(env: Record<string, string | undefined> = process.env): ConsoleSettings {
  let stageTargets: StageTarget[];
  try {
    stageTargets = parseStageTargets(envString("CONSOLE_STAGE_METRICS", "", env));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      "CONSOLE_STAGE_METRICS",
      (error as Error).message.replace(/^CONSOLE_STAGE_METRICS: /, ""),
    );
  }
  return {
    stageTargets,
    scrapeIntervalMs: envInt("CONSOLE_SCRAPE_INTERVAL_MS", 2000, { min: 100, max: 60_000 }, env),
    samplesMax: envInt("CONSOLE_SAMPLES_MAX", 450, { min: 10, max: 100_000 }, env),
    alertsTopic: envString("CONSOLE_ALERTS_TOPIC", topicNames.alertsNew, env),
    notificationsTopic: envString("CONSOLE_NOTIFICATIONS_TOPIC", topicNames.notificationsReady, env),
    deadLetterTopics: envString(
      "CONSOLE_DEAD_LETTER_TOPICS",
      Object.values(topicNames).map(deadLetterTopic).join(","),
      env,
    )
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t !== ""),
    loadRateMax: envInt("CONSOLE_LOAD_RATE_MAX", 5000, { min: 1, max: 1_000_000 }, env),
    loadDurationMaxS: envInt("CONSOLE_LOAD_DURATION_MAX_S", 600, { min: 1, max: 86_400 }, env),
  };
}

/** What the console's routes use besides Postgres; stop() ends the scraper and any load run. */
export interface ConsoleParts {
  brokers: string;
  /** Used for test notifications and dead-letter replays. */
  producer: Producer;
  scraper: StageScraper;
  load: LoadRunner;
  notificationsTopic: string;
  deadLetterTopics: readonly string[];
  logger: Logger;
  stop(): Promise<void>;
}

export function startConsole(
  settings: ConsoleSettings,
  io: { brokers: string; producer: Producer; logger: Logger },
): ConsoleParts {
  const scraper = startStageScraper(settings.stageTargets, {
    intervalMs: settings.scrapeIntervalMs,
    samplesMax: settings.samplesMax,
  });
  const load = new LoadRunner({
    brokers: io.brokers,
    topic: settings.alertsTopic,
    rateMax: settings.loadRateMax,
    durationMaxS: settings.loadDurationMaxS,
    logger: io.logger.child("load"),
  });
  return {
    ...io,
    scraper,
    load,
    notificationsTopic: settings.notificationsTopic,
    deadLetterTopics: settings.deadLetterTopics,
    async stop() {
      scraper.stop();
      await load.close();
    },
  };
}

const windowsMinutes = [5, 15, 60, 360, 1440];
const idsMax = 500;
const anObject = (description: string) => ({ type: "object", description });
const optionalText = { type: "string", maxLength: 2000, nullable: true } as const;

const clientsQuery = {
  fields: {
    ids: { type: "string", maxLength: idsMax * 37, description: "comma-separated client ids" },
    q: { type: "string", maxLength: 200, description: "part of the name" },
    limit: { type: "integer", minimum: 1, maximum: 100 },
  },
  required: [],
} as const;
const stagesQuery = {
  fields: { minutes: { type: "integer", minimum: 1, maximum: 1440 } },
  required: [],
} as const;
const statsQuery = {
  fields: { minutes: { type: "integer", minimum: 1, maximum: 1440, description: windowsMinutes.join(", ") } },
  required: [],
} as const;
const listQuery = {
  fields: { limit: { type: "integer", minimum: 1, maximum: 1000 } },
  required: [],
} as const;
const replayQuery = {
  fields: { limit: { type: "integer", minimum: 1, maximum: 100_000 } },
  required: [],
} as const;
const loadBody = {
  fields: {
    rate: { type: "integer", minimum: 1, maximum: 1_000_000, description: "alerts/s" },
    duration_s: { type: "integer", minimum: 1, maximum: 86_400 },
    severities: { ...optionalText, description: "value:weight,..." },
    sources: { ...optionalText, description: "value:weight,..." },
    names: { ...optionalText, description: "value:weight,..." },
    context: optionalText,
    scope: { ...optionalText, description: "client:<id> or shared:<name>; absent: internal alerts" },
  },
  required: ["rate", "duration_s"],
} as const;

export function consoleRoutes(sql: Sql, parts: ConsoleParts): Route[] {
  const { brokers, producer, scraper, load, notificationsTopic, deadLetterTopics, logger } = parts;
  const base = "/api/v1/console";

  const knownDeadLetterTopic = (topic: string) => {
    if (!deadLetterTopics.includes(topic)) {
      throw new HttpError(404, "not_found", "not a dead-letter topic of this console", {
        fields: { topic: `one of ${deadLetterTopics.join(", ")}` },
      });
    }
    return topic;
  };

  return [
    defineRoute({
      method: "GET",
      path: `${base}/session`,
      operationId: "getConsoleSession",
      summary: "Who the console is signed in as",
      access: "tenant",
      response: { status: 200, schema: anObject("kind (admin or client), client_id, client_name") },
      handle: async ({ principal }) => {
        if (principal.kind === "admin") return { kind: "admin", client_id: null, client_name: null };
        const [client] = await sql<{ name: string }[]>`
          SELECT name FROM clients WHERE id = ${principal.clientId}`;
        return { kind: "client", client_id: principal.clientId, client_name: client?.name ?? null };
      },
    }),

    // Client lookups for the console's pickers and tables: the API lists clients only by id order,
    // which is no way to find one among many. Matches are capped, and `more` says so.
    defineRoute<undefined, typeof clientsQuery>({
      method: "GET",
      path: `${base}/clients`,
      operationId: "findConsoleClients",
      summary: "Find clients by ids or by part of their name",
      access: "admin",
      query: clientsQuery,
      response: { status: 200, schema: anObject("items of {id, name}, and more") },
      handle: async ({ query }) => {
        const ids = (query.ids ?? "").split(",").filter((id) => id !== "");
        if (ids.length > 0) {
          if (ids.length > idsMax || !ids.every(isUuid)) {
            throw badRequest("invalid query", { ids: `at most ${idsMax} comma-separated UUIDs` });
          }
          const items = await sql<{ id: string; name: string }[]>`
            SELECT id, name FROM clients WHERE id IN ${sql(ids)}`;
          return { items, more: false };
        }
        const limit = query.limit ?? 20;
        const q = (query.q ?? "").replace(/[\\%_]/g, (c) => `\\${c}`);
        const rows = await sql<{ id: string; name: string; created_at: Date }[]>`
          SELECT id, name, created_at FROM clients WHERE name ILIKE ${`%${q}%`}
          ORDER BY created_at DESC, id LIMIT ${limit + 1}`;
        return { items: rows.slice(0, limit), more: rows.length > limit };
      },
    }),

    defineRoute<undefined, typeof stagesQuery>({
      method: "GET",
      path: `${base}/stages`,
      operationId: "getStageSeries",
      summary: "Each scraped stage's recent rates, lag and readiness",
      access: "admin",
      query: stagesQuery,
      response: { status: 200, schema: anObject("interval_ms, now, stages") },
      handle: async ({ query }) => {
        const since = Date.now() - (query.minutes ?? 10) * 60_000;
        return { interval_ms: scraper.intervalMs, now: Date.now(), stages: scraper.series(since) };
      },
    }),

    defineRoute<undefined, typeof statsQuery>({
      method: "GET",
      path: `${base}/stats`,
      operationId: "getConsoleStats",
      summary: "Notifications by status and deliveries by channel over a recent window",
      access: "tenant",
      query: statsQuery,
      response: { status: 200, schema: anObject("minutes, notifications_by_status, deliveries_by_channel") },
      handle: async ({ principal, query }) => {
        const minutes = query.minutes ?? 15;
        if (!windowsMinutes.includes(minutes)) {
          throw badRequest("invalid query", { minutes: `one of ${windowsMinutes.join(", ")}` });
        }
        const scope = scopeOf(principal);
        const [statuses, channels] = await Promise.all([
          sql<{ status: string; n: number }[]>`
            SELECT ${shownStatus(sql)} AS status, count(*)::int AS n FROM ${notificationsShown(sql)}
            WHERE n.created_at > now() - make_interval(mins => ${minutes})
              ${scope === null ? sql`` : sql`AND n.client_id = ${scope}`}
            GROUP BY 1`,
          sql<{ channel: string; total: number; success: number; retryable: number; permanent: number }[]>`
            SELECT channel, count(*)::int AS total,
                   count(*) FILTER (WHERE outcome = 'SUCCESS')::int AS success,
                   count(*) FILTER (WHERE outcome = 'RETRYABLE')::int AS retryable,
                   count(*) FILTER (WHERE outcome = 'PERMANENT')::int AS permanent
            FROM deliveries
            WHERE attempted_at > now() - make_interval(mins => ${minutes})
              ${scope === null ? sql`` : sql`AND notification_id IN (SELECT id FROM notifications WHERE client_id = ${scope})`}
            GROUP BY channel ORDER BY channel`,
        ]);
        return {
          minutes,
          notifications_by_status: Object.fromEntries(statuses.map((r) => [r.status, r.n])),
          deliveries_by_channel: channels.map((c) => ({
            ...c,
            success_rate: c.total === 0 ? null : c.success / c.total,
          })),
        };
      },
    }),

    defineRoute({
      method: "POST",
      path: `${base}/endpoints/:id/test`,
      operationId: "sendTestNotification",
      summary: "Send a test notification to an endpoint through the pipeline",
      access: "tenant",
      idKind: "uuid",
      response: { status: 202, schema: anObject("notification_id, alert_id, topic, produced") },
      handle: async ({ principal, id }) => {
        const scope = scopeOf(principal);
        const [endpoint] = await sql<
          { client_id: string; rule_id: string; enabled: boolean; severity: string }[]
        >`
          SELECT e.client_id, e.rule_id, e.enabled, r.severity
          FROM endpoints e JOIN rules r ON r.id = e.rule_id
          WHERE e.id = ${id} ${scope === null ? sql`` : sql`AND e.client_id = ${scope}`}`;
        if (!endpoint) throw new HttpError(404, "not_found", "endpoint not found");
        if (!endpoint.enabled) {
          throw new HttpError(409, "endpoint_disabled", "the endpoint is disabled: enable it first");
        }
        const alertId = `console-test-${crypto.randomUUID()}`;
        // Stored and announced as the aggregator does; the sender's scheduler delivers the row by
        // itself if the notifications.ready record is not produced or not consumed.
        const [row] = await insertNotifications(sql, [
          {
            clientId: endpoint.client_id,
            scope: "",
            route: "",
            alertId,
            severity: endpoint.severity === "*" ? "LOW" : endpoint.severity,
            source: "console",
            name: "test notification",
            context: { sent_by: "console", endpoint_id: id },
            ruleIds: [endpoint.rule_id],
            eventTimeMs: Date.now(),
          },
        ]);
        if (!row) throw new Error("insertNotifications returned no row for a new alert id");
        let produced = true;
        try {
          await producer.send([notificationReadyRecord(row, notificationsTopic)]);
        } catch (error) {
          produced = false;
          logger.warn("test notification: produce failed, the sender's scheduler will pick it up", { error });
        }
        return { notification_id: row.id, alert_id: alertId, topic: notificationsTopic, produced };
      },
    }),

    defineRoute({
      method: "GET",
      path: `${base}/dead-letters`,
      operationId: "listDeadLetterTopics",
      summary: "The console's dead-letter topics and how many records each holds",
      access: "admin",
      response: { status: 200, schema: anObject("topics of {topic, exists, records}") },
      handle: async () =>
        withAdmin(brokers, async (admin) => {
          const existing = new Map(admin.listTopics().map((t) => [t.name, t.partitions]));
          return {
            topics: deadLetterTopics.map((topic) => {
              const partitions = existing.get(topic);
              if (!partitions) return { topic, exists: false, records: 0 };
              let records = 0;
              for (const p of partitions) {
                const { low, high } = admin.watermarks(topic, p);
                records += Math.max(0, high - low);
              }
              return { topic, exists: true, records };
            }),
          };
        }),
    }),

    defineRoute<undefined, typeof listQuery>({
      method: "GET",
      path: `${base}/dead-letters/:topic`,
      operationId: "listDeadLetters",
      summary: "The records of a dead-letter topic, from its start, with their reasons",
      access: "admin",
      idKind: "topic",
      query: listQuery,
      response: { status: 200, schema: anObject("topic, limit, more, items") },
      handle: async ({ id, query }) => {
        const topic = knownDeadLetterTopic(id);
        const limit = query.limit ?? 100;
        const letters = await withAdmin(brokers, (admin) =>
          listDeadLetters(brokers, admin, topic, limit + 1, logger.child("dead-letters")),
        );
        return {
          topic,
          limit,
          // Listing reads from the start of the topic; more than `limit` is said, never cut silently.
          more: letters.length > limit,
          items: letters.slice(0, limit).map((l) => ({
            partition: l.partition,
            offset: l.offset,
            reason: l.reason,
            field: l.field,
            stage: l.stage,
            source_topic: l.sourceTopic,
            source_partition: l.sourcePartition,
            source_offset: l.sourceOffset,
            failed_at: Number.isFinite(l.failedAtMs) ? new Date(l.failedAtMs).toISOString() : null,
            key: l.key ? new TextDecoder().decode(l.key) : null,
            value_bytes: l.value?.byteLength ?? 0,
            value_base64: l.value ? Buffer.from(l.value.subarray(0, 256)).toString("base64") : null,
          })),
        };
      },
    }),

    defineRoute<undefined, typeof replayQuery>({
      method: "POST",
      path: `${base}/dead-letters/:topic/replay`,
      operationId: "replayDeadLetters",
      summary: "Send a dead-letter topic's records not replayed yet back to their source topics",
      access: "admin",
      idKind: "topic",
      query: replayQuery,
      response: { status: 200, schema: anObject("topic, replayed") },
      handle: async ({ id, query }) => {
        const topic = knownDeadLetterTopic(id);
        const limit = query.limit ?? 1000;
        const replayed = await withAdmin(brokers, (admin) =>
          replayDeadLetters(brokers, admin, producer, topic, { limit }, logger.child("dead-letters")),
        );
        logger.info("dead letters replayed from the console", { topic, replayed });
        return { topic, replayed };
      },
    }),

    defineRoute({
      method: "GET",
      path: `${base}/load`,
      operationId: "getLoadRun",
      summary: "The load generator's current or last run",
      access: "admin",
      response: { status: 200, schema: anObject("the run's request, progress, summary and limits") },
      handle: async () => load.status(),
    }),

    defineRoute<typeof loadBody>({
      method: "POST",
      path: `${base}/load`,
      operationId: "startLoadRun",
      summary: "Start sending generated alerts at a rate for a duration",
      access: "admin",
      body: loadBody,
      response: { status: 202, schema: anObject("the run's status") },
      handle: async ({ body }) => {
        // An empty list means the generator's default, as the command-line flags do.
        const text = (value: string | null | undefined) => value || undefined;
        try {
          return load.start({
            rate: body.rate,
            duration_s: body.duration_s,
            severities: text(body.severities),
            sources: text(body.sources),
            names: text(body.names),
            context: text(body.context),
            scope: text(body.scope),
          });
        } catch (error) {
          if (error instanceof LoadInputError)
            throw badRequest("invalid fields", { [error.field]: error.message });
          if (error instanceof Error && error.message === "busy") {
            throw new HttpError(409, "busy", "a load run is in progress: stop it first");
          }
          throw error;
        }
      },
    }),

    defineRoute({
      method: "DELETE",
      path: `${base}/load`,
      operationId: "stopLoadRun",
      summary: "Stop the running load run; what was sent is still awaited",
      access: "admin",
      response: { status: 200, schema: anObject("the run's status") },
      handle: async () => load.stop(),
    }),
  ];
}

async function withAdmin<T>(brokers: string, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(brokers, {}, createLogger("kafka.admin"));
  try {
    return await use(admin);
  } finally {
    admin.close();
  }
}
