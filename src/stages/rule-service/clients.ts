import type { Sql } from "../../adapters/postgres.ts";
import { scopeOf } from "./auth.ts";
import { deleteClient, findClient, insertClient, listClients, updateClient } from "./clients-store.ts";
import { deleteQuery, timestampJsonSchema, uuidJsonSchema, versionField } from "./fields.ts";
import { notFound } from "./http.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route, updateRoutes } from "./route.ts";
import type { ObjectSchema } from "./schema.ts";

const name = { type: "string", minLength: 1, maxLength: 200 } as const;

const createBody = { fields: { name }, required: ["name"] } as const satisfies ObjectSchema;
const putBody = { fields: { name, version: versionField }, required: ["name", "version"] } as const;
const patchBody = { fields: { name, version: versionField }, required: ["version"] } as const;
const listQuery = { fields: pageQueryFields, required: [] } as const satisfies ObjectSchema;

const clientSchema = {
  type: "object",
  required: ["id", "name", "version", "created_at", "updated_at"],
  properties: {
    id: uuidJsonSchema,
    name: { type: "string" },
    version: { type: "integer" },
    created_at: timestampJsonSchema,
    updated_at: timestampJsonSchema,
  },
};
export function clientRoutes(sql: Sql): Route[] {
  const base = "/api/v1/clients";
  return [
    defineRoute({
      method: "POST",
      path: base,
      operationId: "createClient",
      summary: "Create a client",
      access: "admin",
      body: createBody,
      response: { status: 201, schema: clientSchema },
      handle: ({ body }) => insertClient(sql, body.name),
    }),
    defineRoute({
      method: "GET",
      path: base,
      operationId: "listClients",
      summary: "List clients",
      access: "admin",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(clientSchema) },
      handle: async ({ query }) => {
        const limit = query.limit ?? pageLimitDefault;
        return toPage(await listClients(sql, decodeCursor(query.cursor, "uuid"), limit), limit);
      },
    }),
    defineRoute({
      method: "GET",
      path: `${base}/:id`,
      operationId: "getClient",
      summary: "Get a client",
      access: "tenant",
      idKind: "uuid",
      response: { status: 200, schema: clientSchema },
      handle: async ({ principal, id }) => {
        const client = await findClient(sql, scopeOf(principal), id);
        if (!client) throw notFound("client");
        return client;
      },
    }),
    ...updateRoutes({
      base,
      resource: "Client",
      put: putBody,
      patch: patchBody,
      schema: clientSchema,
      update: (scope, id, body) => updateClient(sql, scope, id, body.version, body.name),
    }),
    defineRoute({
      method: "DELETE",
      path: `${base}/:id`,
      operationId: "deleteClient",
      summary: "Delete a client with its keys, ingest credentials, grants, rules and endpoints",
      access: "admin",
      idKind: "uuid",
      query: deleteQuery,
      response: { status: 204 },
      handle: ({ id, query }) => sql.begin((tx) => deleteClient(tx, id, query.version)),
    }),
  ];
}
