import type { Sql } from "../../adapters/postgres.ts";
import { type AllowList, SsrfGuard } from "../../channels/ssrf.ts";
import { assert } from "../../core/assert.ts";
import { RequestRateLimiter, type TokenRate } from "../../core/rate-limit.ts";
import type { Peer } from "../../runtime/http.ts";
import { apiKeyRoutes } from "./api-keys.ts";
import { adminTokenLengthMin, createAuthenticator, type Principal, rateBucketOf } from "./auth.ts";
import { clientRoutes } from "./clients.ts";
import { type ConsoleParts, consoleRoutes } from "./console.ts";
import { endpointRoutes } from "./endpoints.ts";
import { badRequest, errorResponse, HttpError, json, rateLimited, readJsonBody } from "./http.ts";
import { ingestCredentialRoutes } from "./ingest-credentials.ts";
import { notificationRoutes } from "./notifications.ts";
import { buildOpenApi, openApiPath } from "./openapi.ts";
import { pathParamKinds, type Route } from "./route.ts";
import { ruleRoutes } from "./rules.ts";
import { parseObject, parseQuery } from "./schema.ts";
import { scopeRoutes } from "./scopes.ts";
import { silenceRoutes } from "./silences.ts";

export interface RuleServiceOptions {
  sql: Sql;
  adminToken: string;
  /** Larger bodies answer 413. */
  bodyLimitBytes?: number;
  /**
   * Requests per caller (client, whichever of its keys it uses; the admin token; or the remote
   * address when unauthenticated); over it 429.
   * Omitted, nothing is limited: the process always sets it (API_RATE_*), in-process tests need not.
   */
  requestRate?: TokenRate;
  /** Internal endpoint hosts re-admitted, as the sender's (SSRF_ALLOW_*); omitted, none. */
  ssrfAllowList?: AllowList;
  /** The console's server-side parts; omitted, its JSON routes are not served (the page is main's). */
  console?: ConsoleParts;
}

type Req = Request & { params: Record<string, string> };
type Handler = (req: Req, server: Peer) => Promise<Response> | Response;

/** Spread `routes` and `fetch` into `Bun.serve({ port, ...app })`. */
export interface RuleServiceApp {
  routes: Record<string, Handler>;
  fetch: (req: Request) => Response;
}

const noQuery = { fields: {}, required: [] };

export function createRuleServiceApp(options: RuleServiceOptions): RuleServiceApp {
  const { sql, adminToken, bodyLimitBytes = 64 * 1024, requestRate } = options;
  if (adminToken.length < adminTokenLengthMin) {
    throw new Error(`the admin token must be at least ${adminTokenLengthMin} characters`);
  }
  const authenticate = createAuthenticator(sql, adminToken);
  const limiter = requestRate && new RequestRateLimiter(requestRate);
  const table = [
    ...clientRoutes(sql),
    ...apiKeyRoutes(sql),
    ...ingestCredentialRoutes(sql),
    ...scopeRoutes(sql),
    ...ruleRoutes(sql),
    ...endpointRoutes(sql, new SsrfGuard(options.ssrfAllowList)),
    ...notificationRoutes(sql),
    ...silenceRoutes(sql),
    ...(options.console ? consoleRoutes(sql, options.console) : []),
  ];
  for (const route of table) {
    const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
    const expected = route.idKind ? [pathParamKinds[route.idKind].name] : [];
    assert(
      params.join() === expected.join(),
      `${route.operationId}: path ${route.path} needs idKind for its parameter`,
    );
  }

  function admit(key: string): void {
    const admission = limiter?.tryTake(key);
    if (admission?.allowed === false) throw rateLimited(admission.retryAfterMs);
  }

  const admitPeer = (req: Request, server: Peer): void =>
    admit(`address:${server.requestIP(req)?.address ?? "unknown"}`);

  /**
   * Authenticates a request and charges the principal's bucket or, when authentication fails, the
   * remote address's: 401 or 429 as HttpError.
   */
  const gate = async (req: Request, server: Peer): Promise<Principal> => {
    let principal: Principal;
    try {
      principal = await authenticate(req);
    } catch (error) {
      admitPeer(req, server);
      throw error;
    }
    admit(rateBucketOf(principal));
    return principal;
  };

  /** A route that may be called without a body reads an empty one as `{}`, whatever its content type. */
  const readBody = (route: Route, req: Req): Promise<unknown> =>
    route.bodyOptional && req.body === null ? Promise.resolve({}) : readJsonBody(req, bodyLimitBytes);

  async function run(route: Route, req: Req, server: Peer): Promise<Response> {
    const principal = await gate(req, server);
    if (route.access === "admin" && principal.kind !== "admin") {
      throw new HttpError(403, "forbidden", "only the admin token may do this");
    }
    const param = route.idKind && pathParamKinds[route.idKind];
    const id = param ? (req.params[param.name] ?? "") : "";
    if (param && !param.isValid(id)) throw badRequest("invalid path", { [param.name]: param.reason });
    const query = parseQuery(route.query ?? noQuery, new URL(req.url).searchParams);
    const body = route.body && parseObject(route.body, await readBody(route, req));
    const result = await route.handle({ principal, id, body, query });
    return route.response.status === 204
      ? new Response(null, { status: 204 })
      : json(route.response.status, result);
  }

  const routes: Record<string, Handler> = {};
  for (const path of new Set(table.map((r) => r.path))) {
    const byMethod = new Map(table.filter((r) => r.path === path).map((r) => [r.method as string, r]));
    routes[path] = answeringErrors(async (req, server) => {
      const route = byMethod.get(req.method);
      if (route) return await run(route, req, server);
      admitPeer(req, server);
      throw methodNotAllowed([...byMethod.keys()]);
    });
  }
  const openApi = buildOpenApi(table);
  routes[openApiPath] = answeringErrors((req, server) => {
    admitPeer(req, server);
    if (req.method !== "GET") throw methodNotAllowed(["GET"]);
    return json(200, openApi);
  });

  return {
    routes,
    fetch: () => errorResponse(new HttpError(404, "not_found", "no such route")),
  };
}

function answeringErrors(handle: Handler): Handler {
  return async (req, server) => {
    try {
      return await handle(req, server);
    } catch (error) {
      return errorResponse(error);
    }
  };
}

function methodNotAllowed(allowed: string[]): HttpError {
  const list = allowed.join(", ");
  return new HttpError(405, "method_not_allowed", `allowed: ${list}`, { headers: { allow: list } });
}
