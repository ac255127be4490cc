import type { Sql } from "../../adapters/postgres.ts";
import { createAuthenticator } from "./auth.ts";
import { clientRoutes } from "./clients.ts";
import { endpointRoutes } from "./endpoints.ts";
import { badRequest, errorResponse, HttpError, json, readJsonBody } from "./http.ts";
import { notificationRoutes } from "./notifications.ts";
import { buildOpenApi, openApiPath } from "./openapi.ts";
import { isInt64Id } from "./pagination.ts";
import type { Route } from "./route.ts";
import { ruleRoutes } from "./rules.ts";
import { isUuid, parseObject, parseQuery } from "./schema.ts";

export interface RuleServiceOptions {
  sql: Sql;
  adminToken: string;
  /** Larger bodies answer 413. */
  bodyLimitBytes?: number;
}

type Handler = (req: Request & { params: Record<string, string> }) => Promise<Response> | Response;

/** Spread into `Bun.serve({ port, ...app })`. */
export interface RuleServiceApp {
  routes: Record<string, Handler>;
  fetch: (req: Request) => Response;
}

const adminTokenLengthMin = 16;
const noQuery = { fields: {}, required: [] };

export function createRuleServiceApp(options: RuleServiceOptions): RuleServiceApp {
  const { sql, adminToken, bodyLimitBytes = 64 * 1024 } = options;
  if (adminToken.length < adminTokenLengthMin) {
    throw new Error(`the admin token must be at least ${adminTokenLengthMin} characters`);
  }
  const authenticate = createAuthenticator(sql, adminToken);
  const table = [
    ...clientRoutes(sql),
    ...ruleRoutes(sql),
    ...endpointRoutes(sql),
    ...notificationRoutes(sql),
  ];

  async function run(route: Route, req: Request & { params: Record<string, string> }): Promise<Response> {
    const principal = await authenticate(req);
    if (route.access === "admin" && principal.kind !== "admin") {
      throw new HttpError(403, "forbidden", "only the admin token may do this");
    }
    const id = req.params.id ?? "";
    if (route.idKind === "uuid" && !isUuid(id)) throw badRequest("invalid path", { id: "must be a UUID" });
    if (route.idKind === "int64" && !isInt64Id(id)) {
      throw badRequest("invalid path", { id: "must be a positive 64-bit integer" });
    }
    const query = parseQuery(route.query ?? noQuery, new URL(req.url).searchParams);
    const body = route.body && parseObject(route.body, await readJsonBody(req, bodyLimitBytes));
    const result = await route.handle({ principal, id, body, query });
    return route.response.status === 204
      ? new Response(null, { status: 204 })
      : json(route.response.status, result);
  }

  const routes: Record<string, Handler> = {};
  for (const path of new Set(table.map((r) => r.path))) {
    const byMethod = new Map(table.filter((r) => r.path === path).map((r) => [r.method as string, r]));
    routes[path] = async (req) => {
      const route = byMethod.get(req.method);
      if (!route) return methodNotAllowed([...byMethod.keys()]);
      try {
        return await run(route, req);
      } catch (error) {
        return errorResponse(error);
      }
    };
  }
  const openApi = buildOpenApi(table);
  routes[openApiPath] = (req) => (req.method === "GET" ? json(200, openApi) : methodNotAllowed(["GET"]));

  return {
    routes,
    fetch: () => errorResponse(new HttpError(404, "not_found", "no such route")),
  };
}

function methodNotAllowed(allowed: string[]): Response {
  const response = errorResponse(new HttpError(405, "method_not_allowed", `allowed: ${allowed.join(", ")}`));
  response.headers.set("allow", allowed.join(", "));
  return response;
}
