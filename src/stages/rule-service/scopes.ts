import type { Sql } from "../../adapters/postgres.ts";
import { scopeOf } from "./auth.ts";
import { timestampJsonSchema, uuidJsonSchema } from "./fields.ts";
import { badRequest } from "./http.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route } from "./route.ts";
import type { ObjectSchema } from "./schema.ts";
import {
  deleteGrant,
  deleteScope,
  insertGrant,
  insertScope,
  listScopes,
  scopeNamePattern,
} from "./scopes-store.ts";

const clientIdField = { type: "string", format: "uuid", maxLength: 36 } as const;

const createBody = {
  fields: {
    name: {
      type: "string",
      minLength: 1,
      maxLength: 63,
      description: `${scopeNamePattern.source}; alerts ingested under it carry the scope shared:<name>`,
    },
  },
  required: ["name"],
} as const satisfies ObjectSchema;
const listQuery = {
  fields: {
    client_id: { ...clientIdField, description: "only scopes granted to this client" },
    ...pageQueryFields,
  },
  required: [],
} as const satisfies ObjectSchema;
const grantBody = { fields: { client_id: clientIdField }, required: ["client_id"] } as const;
const revokeGrantQuery = { fields: { client_id: clientIdField }, required: ["client_id"] } as const;

const scopeSchema = {
  type: "object",
  required: ["id", "name", "created_at"],
  properties: { id: uuidJsonSchema, name: { type: "string" }, created_at: timestampJsonSchema },
};
const grantSchema = {
  type: "object",
  required: ["scope_id", "client_id", "created_at"],
  properties: { scope_id: uuidJsonSchema, client_id: uuidJsonSchema, created_at: timestampJsonSchema },
};

/**
 * Shared scopes: streams of alerts the admin grants to clients, beside each client's private scope.
 * Grant and scope changes rebuild the rules snapshot, like rule changes.
 */
export function scopeRoutes(sql: Sql): Route[] {
  const base = "/api/v1/scopes";
  return [
    defineRoute({
      method: "POST",
      path: base,
      operationId: "createScope",
      summary: "Create a shared scope",
      access: "admin",
      body: createBody,
      response: { status: 201, schema: scopeSchema },
      handle: ({ body }) => {
        if (!scopeNamePattern.test(body.name)) {
          throw badRequest("invalid fields", { name: `must match ${scopeNamePattern.source}` });
        }
        return insertScope(sql, body.name);
      },
    }),
    defineRoute({
      method: "GET",
      path: base,
      operationId: "listScopes",
      summary: "List shared scopes: all for the admin, those granted to its client for a client key",
      access: "tenant",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(scopeSchema) },
      handle: async ({ principal, query }) => {
        const limit = query.limit ?? pageLimitDefault;
        const after = decodeCursor(query.cursor, "uuid");
        return toPage(await listScopes(sql, scopeOf(principal), query.client_id, after, limit), limit);
      },
    }),
    defineRoute({
      method: "DELETE",
      path: `${base}/:id`,
      operationId: "deleteScope",
      summary: "Delete a shared scope with its grants and ingest credentials",
      access: "admin",
      idKind: "uuid",
      response: { status: 204 },
      handle: ({ id }) => sql.begin((tx) => deleteScope(tx, id)),
    }),
    defineRoute({
      method: "POST",
      path: `${base}/:id/grants`,
      operationId: "grantScope",
      summary: "Grant a shared scope to a client: its rules then match alerts of that scope",
      access: "admin",
      idKind: "uuid",
      body: grantBody,
      response: { status: 201, schema: grantSchema },
      handle: ({ id, body }) => sql.begin((tx) => insertGrant(tx, id, body.client_id)),
    }),
    defineRoute({
      method: "DELETE",
      path: `${base}/:id/grants`,
      operationId: "revokeScopeGrant",
      summary: "Take a shared scope's grant back from a client",
      access: "admin",
      idKind: "uuid",
      query: revokeGrantQuery,
      response: { status: 204 },
      handle: ({ id, query }) => sql.begin((tx) => deleteGrant(tx, id, query.client_id)),
    }),
  ];
}
