/**
 * Silences through the rule service's API, beside the Alertmanager API's /api/v2/silences (which
 * acts with an ingest credential for one client): a client key manages its own client's silences,
 * the admin token those of any client (`client_id` required to create one). Another client's silence
 * answers 404, as if it did not exist. Matchers are Alertmanager's text form, as amtool takes them.
 */
import type { Sql } from "../../adapters/postgres.ts";
import {
  expireSilence,
  findSilence,
  listSilencePage,
  type Silence,
  SilenceLimitError,
  setSilence,
} from "../../adapters/silence-store.ts";
import { parseMatcherList, parseMatchers, silenceLimits, silenceState } from "../../core/silence.ts";
import { scopeOf } from "./auth.ts";
import { timestampJsonSchema, uuidJsonSchema } from "./fields.ts";
import { badRequest, notFound } from "./http.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route } from "./route.ts";
import type { ObjectSchema } from "./schema.ts";

const states = ["active", "pending", "expired"] as const;
const timeField = {
  type: "string",
  maxLength: 40,
  description: "RFC 3339, e.g. 2030-05-01T12:00:00Z",
} as const;

const createBody = {
  fields: {
    client_id: {
      type: "string",
      format: "uuid",
      maxLength: 36,
      description: "required with the admin token; defaults to the key's client",
    },
    matchers: {
      type: "string",
      minLength: 1,
      maxLength: 16_384,
      description: 'Alertmanager matchers, e.g. {severity="HIGH", source=~"db-.*"}',
    },
    starts_at: { ...timeField, description: "default now" },
    ends_at: timeField,
    created_by: { type: "string", minLength: 1, maxLength: silenceLimits.createdByLengthMax },
    comment: { type: "string", minLength: 1, maxLength: silenceLimits.commentLengthMax },
  },
  required: ["matchers", "ends_at", "created_by", "comment"],
} as const satisfies ObjectSchema;

const listQuery = {
  fields: {
    client_id: { type: "string", format: "uuid", maxLength: 36 },
    state: { type: "string", enum: states, maxLength: 8 },
    ...pageQueryFields,
  },
  required: [],
} as const satisfies ObjectSchema;

const silenceSchema = {
  type: "object",
  required: [
    "id",
    "client_id",
    "matchers",
    "state",
    "starts_at",
    "ends_at",
    "created_by",
    "comment",
    "updated_at",
  ],
  properties: {
    id: uuidJsonSchema,
    client_id: uuidJsonSchema,
    matchers: {
      type: "array",
      items: {
        type: "object",
        properties: {
          name: { type: "string" },
          value: { type: "string" },
          isRegex: { type: "boolean" },
          isEqual: { type: "boolean" },
        },
      },
    },
    state: { type: "string", enum: states },
    starts_at: timestampJsonSchema,
    ends_at: timestampJsonSchema,
    created_by: { type: "string" },
    comment: { type: "string" },
    updated_at: timestampJsonSchema,
  },
};

function silenceView(silence: Silence, nowMs: number) {
  return {
    id: silence.id,
    client_id: silence.clientId,
    matchers: silence.matchers,
    state: silenceState(silence.startsAtMs, silence.endsAtMs, nowMs),
    starts_at: new Date(silence.startsAtMs).toISOString(),
    ends_at: new Date(silence.endsAtMs).toISOString(),
    created_by: silence.createdBy,
    comment: silence.comment,
    updated_at: new Date(silence.updatedAtMs).toISOString(),
  };
}

function timeOf(field: string, text: string): number {
  const ms = /^\d{4}-\d\d-\d\dT/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw badRequest("invalid fields", { [field]: "must be an RFC 3339 time" });
  return ms;
}

export function silenceRoutes(sql: Sql, clockMs: () => number = Date.now): Route[] {
  const base = "/api/v1/silences";
  return [
    defineRoute({
      method: "POST",
      path: base,
      operationId: "createSilence",
      summary: "Create a silence",
      access: "tenant",
      body: createBody,
      response: { status: 201, schema: silenceSchema },
      handle: async ({ principal, body }) => {
        const scope = scopeOf(principal);
        const clientId = body.client_id ?? scope;
        if (clientId === null) throw badRequest("invalid fields", { client_id: "is required" });
        // Another client's id answers like an unknown one, so existence is not leaked.
        if (scope !== null && clientId !== scope) throw notFound("client", { client_id: "no such client" });
        let parsed: ReturnType<typeof parseMatchers>;
        try {
          parsed = parseMatchers(parseMatcherList(body.matchers));
        } catch (error) {
          throw badRequest("invalid fields", { matchers: (error as Error).message });
        }
        if (parsed.problems.length > 0)
          throw badRequest("invalid fields", {
            matchers: parsed.problems.map((p) => p.join(": ")).join("; "),
          });
        const nowMs = clockMs();
        const startsAtMs = body.starts_at === undefined ? nowMs : timeOf("starts_at", body.starts_at);
        const endsAtMs = timeOf("ends_at", body.ends_at);
        if (endsAtMs <= Math.max(startsAtMs, nowMs))
          throw badRequest("invalid fields", { ends_at: "must be after starts_at and now" });
        let id: string | undefined;
        try {
          id = await setSilence(
            sql,
            clientId,
            undefined,
            {
              matchers: parsed.matchers,
              startsAtMs,
              endsAtMs,
              createdBy: body.created_by,
              comment: body.comment,
            },
            nowMs,
          );
        } catch (error) {
          if (error instanceof SilenceLimitError)
            throw badRequest("too many silences", { matchers: error.message });
          throw error;
        }
        const silence = id === undefined ? undefined : await findSilence(sql, clientId, id);
        if (!silence) throw notFound("client", { client_id: "no such client" });
        return silenceView(silence, nowMs);
      },
    }),
    defineRoute({
      method: "GET",
      path: base,
      operationId: "listSilences",
      summary: "List silences (expired ones stay listed 5 days)",
      access: "tenant",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(silenceSchema) },
      handle: async ({ principal, query }) => {
        const { limit = pageLimitDefault, cursor, client_id, state } = query;
        const nowMs = clockMs();
        const rows = await listSilencePage(
          sql,
          scopeOf(principal),
          { clientId: client_id, state },
          decodeCursor(cursor, "uuid"),
          limit + 1,
          nowMs,
        );
        return toPage(
          rows.map((silence) => silenceView(silence, nowMs)),
          limit,
        );
      },
    }),
    defineRoute({
      method: "GET",
      path: `${base}/:id`,
      operationId: "getSilence",
      summary: "Get a silence",
      access: "tenant",
      idKind: "uuid",
      response: { status: 200, schema: silenceSchema },
      handle: async ({ principal, id }) => {
        const silence = await findSilence(sql, scopeOf(principal), id);
        if (!silence) throw notFound("silence");
        return silenceView(silence, clockMs());
      },
    }),
    defineRoute({
      method: "DELETE",
      path: `${base}/:id`,
      operationId: "expireSilence",
      summary: "Expire a silence: it ends now (an expired one stays as it is)",
      access: "tenant",
      idKind: "uuid",
      response: { status: 200, schema: silenceSchema },
      handle: async ({ principal, id }) => {
        const scope = scopeOf(principal);
        const nowMs = clockMs();
        if ((await expireSilence(sql, scope, id, nowMs)) === "not-found") throw notFound("silence");
        const silence = await findSilence(sql, scope, id);
        if (!silence) throw notFound("silence");
        return silenceView(silence, nowMs);
      },
    }),
  ];
}
