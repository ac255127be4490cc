import type { Sql } from "../../adapters/postgres.ts";
import { defaultPolicyColumns } from "../../adapters/rule-source.ts";
import { MUTE_WINDOW_LENGTH_MAX } from "../../core/mute-window.ts";
import { groupByProblem, muteWindowsProblem, POLICY_LIMITS } from "../../core/policy.ts";
import { scopeOf } from "./auth.ts";
import { deleteQuery, timestampJsonSchema, uuidJsonSchema, versionField } from "./fields.ts";
import { badRequest, notFound } from "./http.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route, updateRoutes } from "./route.ts";
import { deleteRule, findRule, insertRule, listRules, severities, updateRule } from "./rules-store.ts";
import type { ObjectSchema } from "./schema.ts";

const ruleFields = {
  severity: { type: "string", enum: severities, maxLength: 8, description: "'*' matches any" },
  source: { type: "string", minLength: 1, maxLength: 200, description: "'*' matches any" },
  name: { type: "string", minLength: 1, maxLength: 200, description: "'*' matches any" },
  enabled: { type: "boolean" },
  send_resolved: { type: "boolean", description: "notify when a matched alert resolves (default true)" },
  repeat_interval_ms: {
    type: "integer",
    nullable: true,
    ...POLICY_LIMITS.repeatIntervalMs,
    description: "re-notify while an alert keeps firing; null: the aggregator's REPEAT_INTERVAL_MS",
  },
  group_by: {
    type: "array",
    items: { type: "string", minLength: 1, maxLength: POLICY_LIMITS.labelLengthMax },
    maxItems: POLICY_LIMITS.labelsMax,
    itemsProblem: groupByProblem,
    description:
      "labels (severity, source, name or a context key) whose values group alerts into one message",
  },
  group_wait_ms: {
    type: "integer",
    nullable: true,
    ...POLICY_LIMITS.groupWaitMs,
    description: "delay before a new group's first message; null: the aggregator's GROUP_WAIT_MS",
  },
  group_interval_ms: {
    type: "integer",
    nullable: true,
    ...POLICY_LIMITS.groupIntervalMs,
    description: "delay between messages of one group; null: the aggregator's GROUP_INTERVAL_MS",
  },
  group_alerts_max: {
    type: "integer",
    nullable: true,
    ...POLICY_LIMITS.groupAlertsMax,
    description: "alerts listed per message, the rest counted; null: the aggregator's GROUP_ALERTS_MAX",
  },
  mute_windows: {
    type: "array",
    items: { type: "string", minLength: 1, maxLength: MUTE_WINDOW_LENGTH_MAX },
    maxItems: POLICY_LIMITS.muteWindowsMax,
    itemsProblem: muteWindowsProblem,
    description:
      "'<weekdays> <HH:MM>-<HH:MM> [<time zone>]', e.g. 'monday:friday 22:00-06:00 Europe/Berlin': " +
      "this rule's endpoints get nothing inside them, the client's other rules theirs as usual",
  },
} as const;
const clientIdField = {
  type: "string",
  format: "uuid",
  maxLength: 36,
  description: "required with the admin token; defaults to the key's client",
} as const;

const createBody = {
  fields: { client_id: clientIdField, ...ruleFields },
  required: ["severity", "source", "name"],
} as const satisfies ObjectSchema;
const putBody = {
  fields: { ...ruleFields, version: versionField },
  required: ["severity", "source", "name", "enabled", "version"],
} as const satisfies ObjectSchema;
const patchBody = { fields: { ...ruleFields, version: versionField }, required: ["version"] } as const;
const listQuery = {
  fields: {
    client_id: { type: "string", format: "uuid", maxLength: 36 },
    enabled: ruleFields.enabled,
    severity: ruleFields.severity,
    ...pageQueryFields,
  },
  required: [],
} as const satisfies ObjectSchema;

const ruleSchema = {
  type: "object",
  required: [
    "id",
    "client_id",
    "severity",
    "source",
    "name",
    "enabled",
    ...Object.keys(defaultPolicyColumns),
    "version",
    "created_at",
    "updated_at",
  ],
  properties: {
    id: uuidJsonSchema,
    client_id: uuidJsonSchema,
    severity: { type: "string", enum: severities },
    source: { type: "string" },
    name: { type: "string" },
    enabled: { type: "boolean" },
    send_resolved: { type: "boolean" },
    repeat_interval_ms: { type: ["integer", "null"] },
    group_by: { type: "array", items: { type: "string" } },
    group_wait_ms: { type: ["integer", "null"] },
    group_interval_ms: { type: ["integer", "null"] },
    group_alerts_max: { type: ["integer", "null"] },
    mute_windows: { type: "array", items: { type: "string" } },
    version: { type: "integer" },
    created_at: timestampJsonSchema,
    updated_at: timestampJsonSchema,
  },
};

export function ruleRoutes(sql: Sql): Route[] {
  const base = "/api/v1/rules";
  return [
    defineRoute({
      method: "POST",
      path: base,
      operationId: "createRule",
      summary: "Create a rule",
      access: "tenant",
      body: createBody,
      response: { status: 201, schema: ruleSchema },
      handle: ({ principal, body }) => {
        const { client_id, ...fields } = body;
        const scope = scopeOf(principal);
        const clientId = client_id ?? scope;
        if (clientId === null) throw badRequest("invalid fields", { client_id: "is required" });
        // Another client's id answers like an unknown one, so existence is not leaked.
        if (scope !== null && clientId !== scope) throw notFound("client", { client_id: "no such client" });
        return sql.begin((tx) => insertRule(tx, clientId, { enabled: true, ...fields }));
      },
    }),
    defineRoute({
      method: "GET",
      path: base,
      operationId: "listRules",
      summary: "List rules",
      access: "tenant",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(ruleSchema) },
      handle: async ({ principal, query }) => {
        const { limit = pageLimitDefault, cursor, client_id, ...filter } = query;
        const rows = await listRules(
          sql,
          scopeOf(principal),
          { ...filter, clientId: client_id },
          decodeCursor(cursor, "uuid"),
          limit,
        );
        return toPage(rows, limit);
      },
    }),
    defineRoute({
      method: "GET",
      path: `${base}/:id`,
      operationId: "getRule",
      summary: "Get a rule",
      access: "tenant",
      idKind: "uuid",
      response: { status: 200, schema: ruleSchema },
      handle: async ({ principal, id }) => {
        const rule = await findRule(sql, scopeOf(principal), id);
        if (!rule) throw notFound("rule");
        return rule;
      },
    }),
    ...updateRoutes({
      base,
      resource: "Rule",
      put: putBody,
      // A PUT that leaves the delivery settings out resets them.
      putDefaults: defaultPolicyColumns,
      patch: patchBody,
      schema: ruleSchema,
      update: (scope, id, { version, ...changes }) =>
        sql.begin((tx) => updateRule(tx, scope, id, version, changes)),
    }),
    defineRoute({
      method: "DELETE",
      path: `${base}/:id`,
      operationId: "deleteRule",
      summary: "Delete a rule and its endpoints",
      access: "tenant",
      idKind: "uuid",
      query: deleteQuery,
      response: { status: 204 },
      handle: ({ principal, id, query }) =>
        sql.begin((tx) => deleteRule(tx, scopeOf(principal), id, query.version)),
    }),
  ];
}
