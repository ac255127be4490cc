import { pathParamKinds, type Route } from "./route.ts";
import { fieldJsonSchema, type JsonSchema, objectJsonSchema } from "./schema.ts";

export const openApiPath = "/openapi.json";

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        fields: {
          type: "object",
          additionalProperties: { type: "string" },
          description: "bad field -> reason",
        },
        current_version: { type: "integer", description: "on version_conflict" },
      },
    },
  },
};

const errorDescriptions: Record<number, string> = {
  400: "invalid input; `fields` names each bad field",
  401: "missing or invalid bearer token",
  403: "only the admin token may do this",
  404: "not found, or not visible to this key",
  405: "method not allowed",
  409: "duplicate, or version conflict with `current_version`",
  413: "body too large",
  415: "body is not application/json",
  429: "too many requests from this caller; retry after `Retry-After` seconds",
};

const errorResponse = (code: number): JsonSchema => ({
  description: errorDescriptions[code],
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  ...(code === 429 && {
    headers: {
      "Retry-After": { description: "seconds to wait", schema: { type: "integer", minimum: 1 } },
    },
  }),
});

function errorStatuses(route: Route): number[] {
  const statuses = [400, 401, 405, 429];
  if (route.access === "admin") statuses.push(403);
  if (route.idKind || route.body) statuses.push(404);
  if (route.method !== "GET") statuses.push(409);
  if (route.body) statuses.push(413, 415);
  statuses.push(...(route.moreErrorStatuses ?? []));
  return [...new Set(statuses)].sort();
}

const toOpenApiPath = (path: string): string => path.replace(/:(\w+)/g, "{$1}");

function operation(route: Route): JsonSchema {
  const parameters: JsonSchema[] = [];
  if (route.idKind) {
    const { name, schema } = pathParamKinds[route.idKind];
    parameters.push({ name, in: "path", required: true, schema });
  }
  for (const [name, field] of Object.entries(route.query?.fields ?? {})) {
    parameters.push({
      name,
      in: "query",
      required: route.query?.required.includes(name),
      schema: fieldJsonSchema(field),
    });
  }
  const { status, schema } = route.response;
  const responses: JsonSchema = {
    [status]: schema
      ? { description: "success", content: { "application/json": { schema } } }
      : { description: "success, no content" },
  };
  for (const code of errorStatuses(route)) responses[code] = errorResponse(code);
  return {
    operationId: route.operationId,
    summary: route.summary,
    security: [{ bearer: [] }],
    parameters,
    requestBody: route.body && {
      required: !route.bodyOptional,
      content: { "application/json": { schema: objectJsonSchema(route.body) } },
    },
    responses,
  };
}

/** The document is derived from the route table the server dispatches on. */
export function buildOpenApi(routes: Route[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {
    [openApiPath]: {
      get: {
        operationId: "getOpenApi",
        summary: "This document",
        security: [],
        responses: { 200: { description: "OpenAPI 3.1 document" }, 429: errorResponse(429) },
      },
    },
  };
  for (const route of routes) {
    const path = toOpenApiPath(route.path);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route) };
  }
  return {
    openapi: "3.1.0",
    info: { title: "Alerting rule service", version: "1.0.0" },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "the admin token, or a client API key confined to its client",
        },
      },
    },
  };
}
