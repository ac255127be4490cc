import type { Sql } from "../../adapters/postgres.ts";
import { scopeOf } from "./auth.ts";
import { timestampJsonSchema, uuidJsonSchema } from "./fields.ts";
import { notFound } from "./http.ts";
import { findNotification, listNotifications, notificationStatuses } from "./notifications-store.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route } from "./route.ts";
import type { ObjectSchema } from "./schema.ts";

const listQuery = {
  fields: {
    client_id: { type: "string", format: "uuid", maxLength: 36 },
    status: { type: "string", enum: notificationStatuses, maxLength: 8 },
    ...pageQueryFields,
  },
  required: [],
} as const satisfies ObjectSchema;

const nullable = (type: string) => ({ type: [type, "null"] });
const nullableTimestamp = { ...timestampJsonSchema, type: ["string", "null"] };
const int64Id = { type: "string", pattern: "^[1-9][0-9]*$", description: "int64 as a string" };
const notificationProperties = {
  id: int64Id,
  client_id: uuidJsonSchema,
  scope: {
    type: "string",
    description:
      "the scope the alert came in under: client:<id>, shared:<name>, or empty (internal producers)",
  },
  alert_id: { type: "string" },
  severity: { type: "string" },
  source: { type: "string" },
  name: { type: "string" },
  context: { type: "object" },
  rule_ids: { type: "array", items: uuidJsonSchema },
  event_time: timestampJsonSchema,
  status: { type: "string", enum: notificationStatuses },
  attempts: { type: "integer" },
  next_attempt_at: nullableTimestamp,
  last_error: nullable("string"),
  silenced_by: {
    ...uuidJsonSchema,
    type: ["string", "null"],
    description: "status SILENCED: the client's silence that matched (Alertmanager API /api/v2/silences)",
  },
  muted_by_rule: {
    ...uuidJsonSchema,
    type: ["string", "null"],
    description:
      "status SILENCED: the rule (the notification's route's) whose mute window held when the evaluator processed the alert",
  },
  episode: {
    type: "integer",
    description: "Alertmanager alerts: the alert's firing period (1, 2, ...); other alerts: 0",
  },
  kind: {
    type: "string",
    pattern: "^(firing|resolved|repeat:[1-9][0-9]*)$",
    description: "firing, resolved (the episode ended) or repeat:<n> (a reminder while firing)",
  },
  route: {
    type: "string",
    description:
      "empty unless the client's matched rules group in different ways: then one notification per route, named by its grouping's hash",
  },
  group_key: {
    type: ["string", "null"],
    description: "set when the matched rules group (group_by): the group the notification belongs to",
  },
  group_send_id: {
    ...int64Id,
    type: ["string", "null"],
    description: "the group message that carried it (see group_send on GET /notifications/{id})",
  },
  created_at: timestampJsonSchema,
  updated_at: timestampJsonSchema,
};
const notificationSchema = {
  type: "object",
  required: Object.keys(notificationProperties),
  properties: notificationProperties,
};
const deliverySchema = {
  type: "object",
  properties: {
    id: int64Id,
    endpoint_id: uuidJsonSchema,
    channel: { type: "string" },
    attempted_at: timestampJsonSchema,
    outcome: { type: "string", enum: ["SUCCESS", "RETRYABLE", "PERMANENT"] },
    http_status: nullable("integer"),
    smtp_reply: nullable("string"),
    latency_ms: { type: "integer" },
    error: nullable("string"),
  },
};
const groupSendSchema = {
  type: ["object", "null"],
  description:
    "the group message (one window of its group) the notification went out in; null when ungrouped",
  properties: {
    id: int64Id,
    group_key: { type: "string" },
    window_no: { type: "integer" },
    idempotency_key: { type: "string", description: "what every endpoint received as Idempotency-Key" },
    labels: { type: "object", description: "the group_by labels and their values" },
    alerts: { type: "integer", description: "notifications in the message" },
    status: { type: "string", enum: ["SENDING", "RETRY", "SENT", "FAILED"] },
    attempts: { type: "integer" },
    created_at: timestampJsonSchema,
    deliveries: {
      type: "array",
      items: {
        ...deliverySchema,
        properties: {
          ...deliverySchema.properties,
          alerts: { type: "integer", description: "the message's alerts this endpoint received" },
          carried: {
            type: "boolean",
            description:
              "whether this endpoint is one the notification's own rules route to: a window spans the group's " +
              "rules, and each endpoint gets only its own rules' alerts",
          },
        },
      },
    },
  },
};
const notificationWithDeliveriesSchema = {
  ...notificationSchema,
  required: [...notificationSchema.required, "deliveries", "group_send"],
  properties: {
    ...notificationProperties,
    deliveries: { type: "array", items: deliverySchema },
    group_send: groupSendSchema,
  },
};

export function notificationRoutes(sql: Sql): Route[] {
  return [
    defineRoute({
      method: "GET",
      path: "/api/v1/notifications",
      operationId: "listNotifications",
      summary: "List notifications",
      access: "tenant",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(notificationSchema) },
      handle: async ({ principal, query }) => {
        const { limit = pageLimitDefault, cursor, client_id, status } = query;
        const rows = await listNotifications(
          sql,
          scopeOf(principal),
          { clientId: client_id, status },
          decodeCursor(cursor, "int64"),
          limit,
        );
        return toPage(rows, limit);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/v1/notifications/:id",
      operationId: "getNotification",
      summary: "Get a notification with its delivery attempts and, when grouped, its group message",
      access: "tenant",
      idKind: "int64",
      response: { status: 200, schema: notificationWithDeliveriesSchema },
      handle: async ({ principal, id }) => {
        const notification = await findNotification(sql, scopeOf(principal), id);
        if (!notification) throw notFound("notification");
        return notification;
      },
    }),
  ];
}
