import type { Sql } from "../../adapters/postgres.ts";
import { insertApiKey, listApiKeys, revokeApiKey } from "./api-keys-store.ts";
import { scopeOf } from "./auth.ts";
import { findClient } from "./clients-store.ts";
import { timestampJsonSchema, uuidJsonSchema } from "./fields.ts";
import { notFound } from "./http.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route } from "./route.ts";
import type { ObjectSchema } from "./schema.ts";
import { expiresAtField, parseExpiresAt, secretNameMaxLength } from "./secret-fields.ts";

const createBody = {
  fields: {
    name: { type: "string", maxLength: secretNameMaxLength, description: "what the key is for" },
    expires_at: expiresAtField,
  },
  required: [],
} as const satisfies ObjectSchema;
const listQuery = { fields: pageQueryFields, required: [] } as const satisfies ObjectSchema;

const nullableTimestamp = { ...timestampJsonSchema, type: ["string", "null"] };
const apiKeyProperties = {
  id: uuidJsonSchema,
  client_id: uuidJsonSchema,
  name: { type: "string" },
  prefix: { type: "string", description: "the key's first characters, to tell keys apart" },
  created_at: timestampJsonSchema,
  expires_at: nullableTimestamp,
};
const apiKeySchema = {
  type: "object",
  required: [...Object.keys(apiKeyProperties), "revoked_at"],
  properties: { ...apiKeyProperties, revoked_at: nullableTimestamp },
};
const createdApiKeySchema = {
  type: "object",
  required: [...Object.keys(apiKeyProperties), "key"],
  properties: {
    ...apiKeyProperties,
    key: { type: "string", description: "the plaintext key; returned only by this call" },
  },
};

/** A client key manages its own client's keys only; another client's answer as unknown ones. */
export function apiKeyRoutes(sql: Sql): Route[] {
  return [
    defineRoute({
      method: "POST",
      path: "/api/v1/clients/:id/api-keys",
      operationId: "createApiKey",
      summary: "Create an API key for a client; the key is returned once. At most 20 active per client",
      access: "tenant",
      idKind: "uuid",
      body: createBody,
      bodyOptional: true,
      response: { status: 201, schema: createdApiKeySchema },
      handle: ({ principal, id, body }) => {
        const scope = scopeOf(principal);
        if (scope !== null && scope !== id) throw notFound("client");
        const expiresAt = parseExpiresAt(body.expires_at);
        return sql.begin((tx) => insertApiKey(tx, id, { name: body.name, expiresAt }));
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/v1/clients/:id/api-keys",
      operationId: "listApiKeys",
      summary: "List a client's API keys, revoked and expired ones included; never the keys themselves",
      access: "tenant",
      idKind: "uuid",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(apiKeySchema) },
      handle: async ({ principal, id, query }) => {
        if (!(await findClient(sql, scopeOf(principal), id))) throw notFound("client");
        const limit = query.limit ?? pageLimitDefault;
        return toPage(await listApiKeys(sql, id, decodeCursor(query.cursor, "uuid"), limit), limit);
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/api/v1/api-keys/:id",
      operationId: "revokeApiKey",
      summary: "Revoke an API key; it is refused from the next request on",
      access: "tenant",
      idKind: "uuid",
      response: { status: 204 },
      handle: ({ principal, id }) => revokeApiKey(sql, scopeOf(principal), id),
    }),
  ];
}
