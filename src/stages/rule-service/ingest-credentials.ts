import type { Sql } from "../../adapters/postgres.ts";
import { scopeOf } from "./auth.ts";
import { timestampJsonSchema, uuidJsonSchema } from "./fields.ts";
import { badRequest, HttpError, notFound } from "./http.ts";
import {
  type CredentialOwner,
  insertIngestCredential,
  listIngestCredentials,
  revokeIngestCredential,
} from "./ingest-credentials-store.ts";
import { decodeCursor, pageJsonSchema, pageLimitDefault, pageQueryFields, toPage } from "./pagination.ts";
import { defineRoute, type Route } from "./route.ts";
import type { ObjectSchema } from "./schema.ts";
import { expiresAtField, parseExpiresAt, secretNameMaxLength } from "./secret-fields.ts";

const clientIdField = { type: "string", format: "uuid", maxLength: 36 } as const;
const scopeIdField = { type: "string", format: "uuid", maxLength: 36 } as const;

const createBody = {
  fields: {
    name: { type: "string", minLength: 1, maxLength: secretNameMaxLength, description: "what it is for" },
    client_id: {
      ...clientIdField,
      description: "alerts go in under this client's private scope; a client key's own client by default",
    },
    scope_id: { ...scopeIdField, description: "admin only: alerts go in under this shared scope instead" },
    expires_at: expiresAtField,
  },
  required: ["name"],
} as const satisfies ObjectSchema;
const listQuery = {
  fields: { client_id: clientIdField, scope_id: scopeIdField, ...pageQueryFields },
  required: [],
} as const satisfies ObjectSchema;

const nullableUuid = { ...uuidJsonSchema, type: ["string", "null"] };
const nullableTimestamp = { ...timestampJsonSchema, type: ["string", "null"] };
const credentialProperties = {
  id: uuidJsonSchema,
  name: { type: "string" },
  scope: { type: "string", description: "client:<client id> or shared:<scope name>, carried by its alerts" },
  client_id: nullableUuid,
  scope_id: nullableUuid,
  prefix: { type: "string", description: "the secret's first characters, to tell credentials apart" },
  created_at: timestampJsonSchema,
  expires_at: nullableTimestamp,
};
const credentialSchema = {
  type: "object",
  required: [...Object.keys(credentialProperties), "revoked_at"],
  properties: { ...credentialProperties, revoked_at: nullableTimestamp },
};
const createdCredentialSchema = {
  type: "object",
  required: [...Object.keys(credentialProperties), "secret"],
  properties: {
    ...credentialProperties,
    secret: {
      type: "string",
      description:
        "returned only by this call; ingest takes it as `Authorization: Bearer <secret>` or as the password of basic auth",
    },
  },
};

/** Whose scope a new credential submits under; a client key may only name its own client. */
function ownerOf(scope: string | null, body: { client_id?: string; scope_id?: string }): CredentialOwner {
  if (body.client_id !== undefined && body.scope_id !== undefined) {
    const reason = "give client_id or scope_id, not both";
    throw badRequest("invalid fields", { client_id: reason, scope_id: reason });
  }
  if (body.scope_id !== undefined) {
    if (scope !== null) {
      throw new HttpError(403, "forbidden", "only the admin token may issue credentials for a shared scope");
    }
    return { scopeId: body.scope_id };
  }
  const clientId = body.client_id ?? scope;
  if (clientId === null) throw badRequest("invalid fields", { client_id: "is required (or scope_id)" });
  // Another client's id answers like an unknown one, so existence is not leaked.
  if (scope !== null && clientId !== scope) throw notFound("client", { client_id: "no such client" });
  return { clientId };
}

/** Credentials for ingest: a client key manages its own client's; shared-scope ones are the admin's. */
export function ingestCredentialRoutes(sql: Sql): Route[] {
  const base = "/api/v1/ingest-credentials";
  return [
    defineRoute({
      method: "POST",
      path: base,
      operationId: "createIngestCredential",
      summary: "Issue an ingest credential; the secret is returned once. At most 20 active per owner",
      access: "tenant",
      body: createBody,
      moreErrorStatuses: [403],
      response: { status: 201, schema: createdCredentialSchema },
      handle: ({ principal, body }) => {
        const owner = ownerOf(scopeOf(principal), body);
        const expiresAt = parseExpiresAt(body.expires_at);
        return sql.begin((tx) => insertIngestCredential(tx, owner, { name: body.name, expiresAt }));
      },
    }),
    defineRoute({
      method: "GET",
      path: base,
      operationId: "listIngestCredentials",
      summary: "List ingest credentials, revoked and expired ones included; never the secrets",
      access: "tenant",
      query: listQuery,
      response: { status: 200, schema: pageJsonSchema(credentialSchema) },
      handle: async ({ principal, query }) => {
        const { limit = pageLimitDefault, cursor, client_id, scope_id } = query;
        const filter = { clientId: client_id, scopeId: scope_id };
        const after = decodeCursor(cursor, "uuid");
        return toPage(await listIngestCredentials(sql, scopeOf(principal), filter, after, limit), limit);
      },
    }),
    defineRoute({
      method: "DELETE",
      path: `${base}/:id`,
      operationId: "revokeIngestCredential",
      summary: "Revoke an ingest credential; ingest refuses it from the next request on",
      access: "tenant",
      idKind: "uuid",
      response: { status: 204 },
      handle: ({ principal, id }) => revokeIngestCredential(sql, scopeOf(principal), id),
    }),
  ];
}
