/**
 * The operator console, served by the rule-service: the single-page app at /console (Bun bundles
 * index.html and its TypeScript), and the JSON routes only the console needs under /api/v1/console.
 * Everything else the page shows comes from the ordinary /api/v1 API. Every JSON route goes through
 * the API's gate: the same bearer credentials (the admin token sees everything, a client key only its
 * client) and the same per-caller rate limit.
 *
 * Configuration (environment of the rule-service):
 *   CONSOLE_STAGE_METRICS        evaluator=http://127.0.0.1:9102,sender=... (stages to scrape)
 *   CONSOLE_SCRAPE_INTERVAL_MS   2000; CONSOLE_SAMPLES_MAX 450 (15 min at 2 s)
 *   CONSOLE_ALERTS_TOPIC         where the load panel sends alerts (alerts.new)
 *   CONSOLE_NOTIFICATIONS_TOPIC  where a test notification's notifications.ready goes
 *   CONSOLE_DEAD_LETTER_TOPICS   comma-separated; default: the four pipeline topics' .dlq
 *   CONSOLE_LOAD_RATE_MAX        5000 alerts/s; CONSOLE_LOAD_DURATION_MAX_S 600
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { listDeadLetters, replayDeadLetters } from "../adapters/dead-letters.ts";
import type { Sql } from "../adapters/postgres.ts";
import { NotificationReadySchema } from "../gen/alerting/v1/alert_pb.ts";
import { Admin, type Producer } from "../kafka/index.ts";
import { envInt, envString } from "../runtime/config.ts";
import { infraUrls } from "../runtime/env.ts";
import type { Peer } from "../runtime/http.ts";
import { createLogger, type Logger } from "../runtime/log.ts";
import { deadLetterTopic, topicNames } from "../runtime/topics.ts";
import type { Gate } from "../stages/rule-service/app.ts";
import { type Principal, scopeOf } from "../stages/rule-service/auth.ts";
import { badRequest, errorResponse, HttpError, json, readJsonBody } from "../stages/rule-service/http.ts";
import { isUuid } from "../stages/rule-service/schema.ts";
import page from "./index.html";
import { LoadInputError, type LoadRequest, LoadRunner } from "./load-runner.ts";
import { parseStageTargets, type StageScraper, startStageScraper } from "./stage-metrics.ts";

export interface ConsoleOptions {
  sql: Sql;
  /** The rule service's authentication and rate limiting (RuleServiceApp.gate). */
  gate: Gate;
  /** Used for test notifications and dead-letter replays. */
  producer: Producer;
  logger: Logger;
  brokers?: string;
  env?: Record<string, string | undefined>;
}

export interface Console {
  routes: Record<string, unknown>;
  scraper: StageScraper;
  stop(): Promise<void>;
}

type Req = Request & { params: Record<string, string> };
type Handler = (ctx: { req: Req; principal: Principal; url: URL }) => Promise<unknown> | unknown;
type Methods = Partial<Record<"GET" | "POST" | "DELETE", { access: "admin" | "tenant"; handle: Handler }>>;

const bodyLimitBytes = 16 * 1024;
const windowsMinutes = [5, 15, 60, 360, 1440];

export function createConsole(options: ConsoleOptions): Console {
  const { sql, gate, producer, logger } = options;
  const env = options.env ?? process.env;
  const brokers = options.brokers ?? infraUrls.kafkaBrokers;
  const intervalMs = envInt("CONSOLE_SCRAPE_INTERVAL_MS", 2000, { min: 100, max: 60_000 }, env);
  const scraper = startStageScraper(parseStageTargets(envString("CONSOLE_STAGE_METRICS", "", env)), {
    intervalMs,
    samplesMax: envInt("CONSOLE_SAMPLES_MAX", 450, { min: 10, max: 100_000 }, env),
  });
  const notificationsTopic = envString("CONSOLE_NOTIFICATIONS_TOPIC", topicNames.notificationsReady, env);
  const deadLetterTopics = envString(
    "CONSOLE_DEAD_LETTER_TOPICS",
    Object.values(topicNames).map(deadLetterTopic).join(","),
    env,
  )
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const load = new LoadRunner({
    brokers,
    topic: envString("CONSOLE_ALERTS_TOPIC", topicNames.alertsNew, env),
    rateMax: envInt("CONSOLE_LOAD_RATE_MAX", 5000, { min: 1, max: 1_000_000 }, env),
    durationMaxS: envInt("CONSOLE_LOAD_DURATION_MAX_S", 600, { min: 1, max: 86_400 }, env),
    logger: logger.child("load"),
  });

  const route = (methods: Methods) => async (req: Req, server: Peer) => {
    try {
      // Before the method check, so that every request is charged to a budget.
      const principal = await gate(req, server);
      const method = methods[req.method as keyof Methods];
      if (!method) {
        const allowed = Object.keys(methods).join(", ");
        throw new HttpError(405, "method_not_allowed", `allowed: ${allowed}`, {
          headers: { allow: allowed },
        });
      }
      if (method.access === "admin" && principal.kind !== "admin") {
        throw new HttpError(403, "forbidden", "only the admin token may do this");
      }
      const result = await method.handle({ req, principal, url: new URL(req.url) });
      return result instanceof Response ? result : json(200, result);
    } catch (error) {
      return errorResponse(error);
    }
  };

  const knownDeadLetterTopic = (topic: string) => {
    if (!deadLetterTopics.includes(topic)) {
      throw new HttpError(404, "not_found", "not a dead-letter topic of this console", {
        fields: { topic: `one of ${deadLetterTopics.join(", ")}` },
      });
    }
    return topic;
  };

  const routes: Record<string, unknown> = {
    "/console": page,
    "/console/*": page,

    "/api/v1/console/session": route({
      GET: {
        access: "tenant",
        handle: async ({ principal }) => {
          if (principal.kind === "admin") return { kind: "admin", client_id: null, client_name: null };
          const [client] = await sql<{ name: string }[]>`
            SELECT name FROM clients WHERE id = ${principal.clientId}`;
          return { kind: "client", client_id: principal.clientId, client_name: client?.name ?? null };
        },
      },
    }),

    // Client lookups for the console's pickers and tables: the API lists clients only by id order,
    // which is no way to find one among many. Matches are capped, and `more` says so.
    "/api/v1/console/clients": route({
      GET: {
        access: "admin",
        handle: async ({ url }) => {
          const ids = (url.searchParams.get("ids") ?? "").split(",").filter((id) => id !== "");
          if (ids.length > 0) {
            if (ids.length > 500 || !ids.every(isUuid)) {
              throw badRequest("invalid query", { ids: "at most 500 comma-separated UUIDs" });
            }
            const items = await sql<{ id: string; name: string }[]>`
              SELECT id, name FROM clients WHERE id IN ${sql(ids)}`;
            return { items, more: false };
          }
          const limit = boundedInt(url.searchParams.get("limit"), 20, 1, 100, "limit");
          const q = (url.searchParams.get("q") ?? "").slice(0, 200).replace(/[\\%_]/g, (c) => `\\${c}`);
          const rows = await sql<{ id: string; name: string; created_at: Date }[]>`
            SELECT id, name, created_at FROM clients WHERE name ILIKE ${`%${q}%`}
            ORDER BY created_at DESC, id LIMIT ${limit + 1}`;
          return { items: rows.slice(0, limit), more: rows.length > limit };
        },
      },
    }),

    "/api/v1/console/stages": route({
      GET: {
        access: "admin",
        handle: ({ url }) => {
          const minutes = Number(url.searchParams.get("minutes") ?? 10);
          const since = Date.now() - (Number.isFinite(minutes) ? minutes : 10) * 60_000;
          return { interval_ms: scraper.intervalMs, now: Date.now(), stages: scraper.series(since) };
        },
      },
    }),

    "/api/v1/console/stats": route({
      GET: {
        access: "tenant",
        handle: async ({ principal, url }) => {
          const minutes = Number(url.searchParams.get("minutes") ?? 15);
          if (!windowsMinutes.includes(minutes)) {
            throw badRequest("invalid query", { minutes: `one of ${windowsMinutes.join(", ")}` });
          }
          const scope = scopeOf(principal);
          const byClient = scope === null ? sql`` : sql`AND client_id = ${scope}`;
          const [statuses, channels] = await Promise.all([
            sql<{ status: string; n: number }[]>`
              SELECT status, count(*)::int AS n FROM notifications
              WHERE created_at > now() - make_interval(mins => ${minutes}) ${byClient}
              GROUP BY status`,
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
      },
    }),

    "/api/v1/console/endpoints/:id/test": route({
      POST: {
        access: "tenant",
        handle: async ({ req, principal }) => {
          const id = req.params.id ?? "";
          if (!isUuid(id)) throw badRequest("invalid path", { id: "must be a UUID" });
          const scope = scopeOf(principal);
          const [endpoint] = await sql<
            { client_id: string; rule_id: string; enabled: boolean; severity: string; type: string }[]
          >`
            SELECT e.client_id, e.rule_id, e.enabled, e.type, r.severity
            FROM endpoints e JOIN rules r ON r.id = e.rule_id
            WHERE e.id = ${id} ${scope === null ? sql`` : sql`AND e.client_id = ${scope}`}`;
          if (!endpoint) throw new HttpError(404, "not_found", "endpoint not found");
          if (!endpoint.enabled) {
            throw new HttpError(409, "endpoint_disabled", "the endpoint is disabled: enable it first");
          }
          const alertId = `console-test-${crypto.randomUUID()}`;
          const severity = endpoint.severity === "*" ? "LOW" : endpoint.severity;
          // next_attempt_at is the sender's safety net: its scheduler delivers the row by itself
          // after 5 s if the notifications.ready record below is not consumed (e.g. another topic).
          const [row] = await sql<{ id: string }[]>`
            INSERT INTO notifications (client_id, alert_id, severity, source, name, context, rule_ids,
                                       event_time, next_attempt_at)
            VALUES (${endpoint.client_id}, ${alertId}, ${severity}, 'console', 'test notification',
                    ${sql.json({ sent_by: "console", endpoint_id: id })}, ARRAY[${endpoint.rule_id}]::uuid[],
                    now(), now() + interval '5 seconds')
            RETURNING id`;
          if (!row) throw new Error("INSERT ... RETURNING returned no row");
          let produced = true;
          try {
            await producer.send([
              {
                topic: notificationsTopic,
                key: endpoint.client_id,
                value: toBinary(
                  NotificationReadySchema,
                  create(NotificationReadySchema, {
                    notificationId: BigInt(row.id),
                    clientId: endpoint.client_id,
                    alertId,
                    schemaVersion: 1,
                  }),
                ),
              },
            ]);
          } catch (error) {
            produced = false;
            logger.warn("test notification: produce failed, the sender's scheduler will pick it up", {
              error,
            });
          }
          return json(202, {
            notification_id: String(row.id),
            alert_id: alertId,
            topic: notificationsTopic,
            produced,
          });
        },
      },
    }),

    "/api/v1/console/dead-letters": route({
      GET: {
        access: "admin",
        handle: () =>
          withAdmin(brokers, (admin) => {
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
      },
    }),

    "/api/v1/console/dead-letters/:topic": route({
      GET: {
        access: "admin",
        handle: async ({ req, url }) => {
          const topic = knownDeadLetterTopic(decodeURIComponent(req.params.topic ?? ""));
          const limit = boundedInt(url.searchParams.get("limit"), 100, 1, 1000, "limit");
          const letters = await withAdminAsync(brokers, (admin) =>
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
      },
    }),

    "/api/v1/console/dead-letters/:topic/replay": route({
      POST: {
        access: "admin",
        handle: async ({ req, url }) => {
          const topic = knownDeadLetterTopic(decodeURIComponent(req.params.topic ?? ""));
          const limit = boundedInt(url.searchParams.get("limit"), 1000, 1, 100_000, "limit");
          const replayed = await withAdminAsync(brokers, (admin) =>
            replayDeadLetters(brokers, admin, producer, topic, { limit }, logger.child("dead-letters")),
          );
          logger.info("dead letters replayed from the console", { topic, replayed });
          return { topic, replayed };
        },
      },
    }),

    "/api/v1/console/load": route({
      GET: { access: "admin", handle: () => load.status() },
      POST: {
        access: "admin",
        handle: async ({ req }) => {
          const body = (await readJsonBody(req, bodyLimitBytes)) as Partial<
            Record<keyof LoadRequest, unknown>
          >;
          if (typeof body !== "object" || body === null) throw badRequest("invalid body", {});
          const text = (name: keyof LoadRequest) => {
            const value = body[name];
            if (value === undefined || value === null || value === "") return undefined;
            if (typeof value !== "string" || value.length > 2000) {
              throw badRequest("invalid fields", { [name]: "must be a string of at most 2000 characters" });
            }
            return value;
          };
          const request: LoadRequest = {
            rate: Number(body.rate),
            duration_s: Number(body.duration_s),
            severities: text("severities"),
            sources: text("sources"),
            names: text("names"),
            context: text("context"),
          };
          try {
            return json(202, load.start(request));
          } catch (error) {
            if (error instanceof LoadInputError)
              throw badRequest("invalid fields", { [error.field]: error.message });
            if (error instanceof Error && error.message === "busy") {
              throw new HttpError(409, "busy", "a load run is in progress: stop it first");
            }
            throw error;
          }
        },
      },
      DELETE: { access: "admin", handle: () => load.stop() },
    }),
  };

  return {
    routes,
    scraper,
    async stop() {
      scraper.stop();
      await load.close();
    },
  };
}

function boundedInt(raw: string | null, fallback: number, min: number, max: number, name: string): number {
  if (raw === null || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badRequest("invalid query", { [name]: `an integer within ${min}..${max}` });
  }
  return value;
}

function withAdmin<T>(brokers: string, use: (admin: Admin) => T): T {
  const admin = new Admin(brokers, {}, createLogger("kafka.admin"));
  try {
    return use(admin);
  } finally {
    admin.close();
  }
}

async function withAdminAsync<T>(brokers: string, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(brokers, {}, createLogger("kafka.admin"));
  try {
    return await use(admin);
  } finally {
    admin.close();
  }
}
