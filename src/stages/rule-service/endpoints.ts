import type { Sql } from "../../adapters/postgres.ts";
import type { SsrfGuard } from "../../channels/ssrf.ts";
import { scopeOf } from "./auth.ts";
import { endpointTypes } from "./endpoint-value.ts";
import {
  deleteEndpoint,
  findEndpoint,
  insertEndpoint,
  listEndpoints,
  updateEndpoint,
} from "./endpoints-store.ts";
import { deleteQuery, timestampJsonSchema, uuidJsonSchema, versionField } from "./fields.ts";
import { notFound } from "./http.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route } from "./route.ts";
import { findRule } from "./rules-store.ts";
import type { ObjectSchema } from "./schema.ts";

const endpointFields = {
  type: { type: "string", enum: endpointTypes, maxLength: 7 },
  value: {
    type: "string",
    minLength: 1,
    maxLength: 2000,
    description:
      "email: address or comma-separated addresses; slack, webhook: http(s) URL, not to an internal address or localhost",
  },
  enabled: { type: "boolean" },
} as const;
const secretField = {
  type: "string",
  minLength: 16,
  maxLength: 512,
  description: "webhook only: HMAC-SHA256 signing secret; write-only",
} as const;

const createBody = {
  fields: { ...endpointFields, secret: secretField },
  required: ["type", "value"],
} as const satisfies ObjectSchema;
const patchBody = {
  fields: {
    ...endpointFields,
    secret: { ...secretField, nullable: true, description: "null removes the secret" },
    version: versionField,
  },
  required: ["version"],
} as const satisfies ObjectSchema;
const listQuery = { fields: pageQueryFields, required: [] } as const satisfies ObjectSchema;

const endpointSchema = {
  type: "object",
  required: [
    "id",
    "rule_id",
    "client_id",
    "type",
    "value",
    "enabled",
    "has_secret",
    "version",
    "created_at",
    "updated_at",
  ],
  properties: {
    id: uuidJsonSchema,
    rule_id: uuidJsonSchema,
    client_id: uuidJsonSchema,
    type: { type: "string", enum: endpointTypes },
    value: { type: "string" },
    enabled: { type: "boolean" },
    has_secret: { type: "boolean" },
    version: { type: "integer" },
    created_at: timestampJsonSchema,
    updated_at: timestampJsonSchema,
  },
};

/** `guard` refuses endpoint URLs with internal address literals when they are saved. */
export function endpointRoutes(sql: Sql, guard: SsrfGuard): Route[] {
  return [
    defineRoute({
      method: "POST",
      path: "/api/v1/rules/:id/endpoints",
      operationId: "createEndpoint",
      summary: "Attach an endpoint to a rule",
      access: "tenant",
      idKind: "uuid",
      body: createBody,
      response: { status: 201, schema: endpointSchema },
      handle: async ({ principal, id, body }) => {
        const { secret = null, enabled = true, ...fields } = body;
        const scope = scopeOf(principal);
        const endpoint = await insertEndpoint(sql, scope, id, { ...fields, secret, enabled }, guard);
        if (!endpoint) throw notFound("rule");
        return endpoint;
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/v1/rules/:id/endpoints",
      operationId: "listEndpoints",
      summary: "List a rule's endpoints",
      access: "tenant",
      idKind: "uuid",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(endpointSchema) },
      handle: async ({ principal, id, query }) => {
        const scope = scopeOf(principal);
        if (!(await findRule(sql, scope, id))) throw notFound("rule");
        const limit = query.limit ?? pageLimitDefault;
        return toPage(await listEndpoints(sql, scope, id, decodeCursor(query.cursor, "uuid"), limit), limit);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/v1/endpoints/:id",
      operationId: "getEndpoint",
      summary: "Get an endpoint",
      access: "tenant",
      idKind: "uuid",
      response: { status: 200, schema: endpointSchema },
      handle: async ({ principal, id }) => {
        const endpoint = await findEndpoint(sql, scopeOf(principal), id);
        if (!endpoint) throw notFound("endpoint");
        return endpoint;
      },
    }),
    defineRoute({
      method: "PATCH",
      path: "/api/v1/endpoints/:id",
      operationId: "updateEndpoint",
      summary: "Update some fields of an endpoint",
      access: "tenant",
      idKind: "uuid",
      body: patchBody,
      response: { status: 200, schema: endpointSchema },
      handle: ({ principal, id, body }) => {
        const { version, ...changes } = body;
        return sql.begin((tx) => updateEndpoint(tx, scopeOf(principal), id, version, changes, guard));
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/api/v1/endpoints/:id",
      operationId: "deleteEndpoint",
      summary: "Delete an endpoint",
      access: "tenant",
      idKind: "uuid",
      query: deleteQuery,
      response: { status: 204 },
      handle: ({ principal, id, query }) => deleteEndpoint(sql, scopeOf(principal), id, query.version),
    }),
  ];
}
