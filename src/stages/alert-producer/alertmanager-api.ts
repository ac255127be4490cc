/**
 * The rest of Alertmanager's API v2 beside ingest's POST /api/v2/alerts, so amtool (one base URL for
 * alerts and silences) and Prometheus see one Alertmanager:
 *
 *   GET  /-/healthy, /-/ready                    probes, no credential
 *   GET  /api/v2/status                          enough for `amtool config show` and `cluster show`
 *   GET  /api/v2/receivers                       the client's enabled endpoints, as receivers
 *   GET  /api/v2/alerts, /api/v2/alerts/groups   the alerts the client's notifications hold
 *   GET  /api/v2/silences?filter=...             the client's silences
 *   POST /api/v2/silences                        create, or update when `id` is given
 *   GET, DELETE /api/v2/silence/{id}             read, expire
 *
 * Callers authenticate with an ingest credential (Bearer or Basic, as ingest). A credential of a
 * client's private scope acts for that client, which sees and changes only its own silences and
 * alerts; another client's silence is 404, as if it did not exist. A shared-scope credential only
 * submits alerts (403 here). Errors on /api/v2 are a JSON string, which is what amtool decodes.
 */

import { verifyIngestCredential } from "../../adapters/ingest-credentials.ts";
import type { Sql } from "../../adapters/postgres.ts";
import {
  expireSilence,
  findSilence,
  listSilences,
  type Silence,
  SilenceLimitError,
  setSilence,
} from "../../adapters/silence-store.ts";
import { assert } from "../../core/assert.ts";
import { RequestRateLimiter, type TokenRate } from "../../core/rate-limit.ts";
import {
  type CompiledMatcher,
  compileMatcher,
  parseMatchers,
  parseMatcherText,
  silenceLimits,
  silenceMatchesFilter,
  silenceState,
  silenceTextProblem,
} from "../../core/silence.ts";
import { HttpError, type Peer, rateLimited, readJsonBody } from "../../runtime/http.ts";
import type { Logger } from "../../runtime/log.ts";
import { readAlertGroups, readAlerts } from "./alertmanager-alerts.ts";
import { parseTimestampMs } from "./validate.ts";

export type Handler = (request: Request, server: Peer) => Promise<Response>;

export interface AlertmanagerApiOptions {
  sql: Sql;
  logger: Logger;
  /** Per remote address, charged before the credential is looked up. */
  requestRate: TokenRate;
  /** Ingest's routes: its POST /api/v2/alerts keeps answering POST on the path whose GET is served here. */
  ingestRoutes: Readonly<Record<string, Handler>>;
  isReady: () => boolean;
  clockMs?: () => number;
}

/** The client a request acts for. */
export interface Caller {
  clientId: string;
}

/** Alertmanager's version this API follows; amtool warns when its own minor version differs. */
const apiVersion = "0.25.0";
const silenceBodyLimitBytes = 256 * 1024;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const postableSilenceFields = new Set(["id", "matchers", "startsAt", "endsAt", "createdBy", "comment"]);

export function createAlertmanagerApi(options: AlertmanagerApiOptions): { routes: Record<string, Handler> } {
  const { sql } = options;
  const clockMs = options.clockMs ?? Date.now;
  const startedAtMs = clockMs();
  const limiter = new RequestRateLimiter(options.requestRate);
  const postAlerts = options.ingestRoutes["/api/v2/alerts"];
  assert(postAlerts !== undefined, "ingest serves POST /api/v2/alerts");

  /** One route: rate limit, method dispatch, the caller, and errors as Alertmanager answers them. */
  function route(methods: Record<string, (request: Request, caller: Caller) => Promise<Response>>): Handler {
    return async (request, peer) => {
      try {
        const admission = limiter.tryTake(peer.requestIP(request)?.address ?? "unknown");
        if (!admission.allowed) throw rateLimited(admission.retryAfterMs);
        const handle = methods[request.method];
        if (!handle) {
          const allow = Object.keys(methods).join(", ");
          throw new HttpError(405, "method_not_allowed", `use ${allow}`, { headers: { allow } });
        }
        return await handle(request, await authenticate(request));
      } catch (error) {
        return errorResponse(error, options.logger);
      }
    };
  }

  async function authenticate(request: Request): Promise<Caller> {
    let credential: Awaited<ReturnType<typeof verifyIngestCredential>>;
    try {
      credential = await verifyIngestCredential(sql, request.headers.get("authorization"));
    } catch (error) {
      options.logger.warn("could not check an ingest credential", { error });
      throw new HttpError(503, "credentials_unavailable", "the credential could not be checked, retry");
    }
    if (!credential)
      throw new HttpError(401, "unauthorized", "an ingest credential is required (Bearer or Basic auth)", {
        headers: { "www-authenticate": 'Basic realm="alerting"' },
      });
    if (!credential.scope.startsWith("client:"))
      throw new HttpError(403, "forbidden", "a shared-scope credential may only submit alerts");
    return { clientId: credential.scope.slice("client:".length) };
  }

  const json = (body: unknown) => Response.json(body);
  // POST on this path is ingest's, with its own limiter and errors.
  const getAlerts = route({
    GET: async (request, caller) =>
      json(await readAlerts(sql, caller.clientId, alertQuery(request), clockMs())),
  });

  return {
    routes: {
      "/-/healthy": async (request) => (isProbe(request) ? probeAnswer(200, "OK") : notAllowed()),
      "/-/ready": async (request) => {
        if (!isProbe(request)) return notAllowed();
        return options.isReady() ? probeAnswer(200, "OK") : probeAnswer(503, "shutting down");
      },
      "/api/v2/status": route({
        GET: async (_, caller) => json(await status(caller)),
      }),
      "/api/v2/receivers": route({
        GET: async (_, caller) => json((await receivers(sql, caller.clientId)).map((name) => ({ name }))),
      }),
      "/api/v2/alerts": async (request, peer) =>
        request.method === "POST" ? postAlerts(request, peer) : getAlerts(request, peer),
      "/api/v2/alerts/groups": route({
        GET: async (request, caller) =>
          json(await readAlertGroups(sql, caller.clientId, alertQuery(request), clockMs())),
      }),
      "/api/v2/silences": route({
        GET: async (request, caller) => json(await getSilences(request, caller)),
        POST: async (request, caller) => json({ silenceID: await postSilence(request, caller) }),
      }),
      "/api/v2/silence/:id": route({
        GET: async (request, caller) => json(gettable(await ownSilence(request, caller), clockMs())),
        DELETE: async (request, caller) => {
          const outcome = await expireSilence(sql, caller.clientId, silenceIdOf(request), clockMs());
          if (outcome === "not-found") throw silenceNotFound();
          return new Response(null, { status: 200 });
        },
      }),
    },
  };

  async function status(caller: Caller) {
    const names = await receivers(sql, caller.clientId);
    return {
      cluster: { name: "alerting", status: "ready", peers: [] },
      versionInfo: {
        version: apiVersion,
        revision: "alerting",
        branch: "alerting",
        buildUser: "alerting",
        buildDate: "",
        goVersion: "",
      },
      config: { original: configText(caller.clientId, names) },
      uptime: new Date(startedAtMs).toISOString(),
    };
  }

  async function getSilences(request: Request, caller: Caller) {
    const filter = filterMatchers(new URL(request.url).searchParams.getAll("filter"));
    const nowMs = clockMs();
    const silences = (await listSilences(sql, caller.clientId, nowMs)).filter((silence) =>
      silenceMatchesFilter(silence.matchers, filter),
    );
    return sortLikeAlertmanager(silences, nowMs).map((silence) => gettable(silence, nowMs));
  }

  async function postSilence(request: Request, caller: Caller): Promise<string> {
    const body = await readJsonBody(request, silenceBodyLimitBytes);
    const { id, input } = postableSilence(body);
    const nowMs = clockMs();
    if (input.startsAtMs >= input.endsAtMs)
      throw badRequest("Failed to create silence: start time must be before end time");
    if (input.endsAtMs < nowMs) throw badRequest("Failed to create silence: end time can't be in the past");
    let silenceId: string | undefined;
    try {
      silenceId = await setSilence(sql, caller.clientId, id, input, nowMs);
    } catch (error) {
      if (error instanceof SilenceLimitError) throw badRequest(error.message);
      throw error;
    }
    if (silenceId === undefined) throw silenceNotFound();
    return silenceId;
  }

  async function ownSilence(request: Request, caller: Caller): Promise<Silence> {
    const silence = await findSilence(sql, caller.clientId, silenceIdOf(request));
    if (!silence) throw silenceNotFound();
    return silence;
  }
}

function silenceIdOf(request: Request): string {
  const id = decodeURIComponent(new URL(request.url).pathname.split("/").at(-1) ?? "");
  if (!uuidPattern.test(id)) throw badRequest("silenceID must be a UUID");
  return id.toLowerCase();
}

/** Alertmanager's PostableSilence, checked field by field; every problem goes into one message. */
function postableSilence(body: unknown): { id: string | undefined; input: Parameters<typeof setSilence>[3] } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw badRequest("body: expected a silence object");
  const problems: [string, string][] = [];
  for (const key of Object.keys(body)) {
    if (!postableSilenceFields.has(key)) problems.push([key.slice(0, 100), "unknown field"]);
  }
  const fields = body as Record<string, unknown>;
  let id: string | undefined;
  if (fields.id !== undefined && fields.id !== null && fields.id !== "") {
    if (typeof fields.id === "string" && uuidPattern.test(fields.id)) id = fields.id.toLowerCase();
    else problems.push(["id", "expected a silence UUID"]);
  }
  const { matchers, problems: matcherProblems } = parseMatchers(fields.matchers);
  problems.push(...matcherProblems);
  const time = (field: "startsAt" | "endsAt"): number => {
    const value = fields[field];
    const ms = typeof value === "string" ? parseTimestampMs(value) : undefined;
    if (ms === undefined) problems.push([field, "required: an RFC 3339 time, e.g. 2024-05-01T12:00:00Z"]);
    return ms ?? 0;
  };
  const startsAtMs = time("startsAt");
  const endsAtMs = time("endsAt");
  const createdByProblem = silenceTextProblem(fields.createdBy, silenceLimits.createdByLengthMax);
  if (createdByProblem !== undefined) problems.push(["createdBy", createdByProblem]);
  const commentProblem = silenceTextProblem(fields.comment, silenceLimits.commentLengthMax);
  if (commentProblem !== undefined) problems.push(["comment", commentProblem]);
  if (problems.length > 0)
    throw badRequest(problems.map(([field, reason]) => `${field}: ${reason}`).join("; "));
  return {
    id,
    input: {
      matchers,
      startsAtMs,
      endsAtMs,
      createdBy: fields.createdBy as string,
      comment: fields.comment as string,
    },
  };
}

/** The `filter` query parameter: matchers in Alertmanager's text form. */
export function filterMatchers(texts: readonly string[]): CompiledMatcher[] {
  if (texts.length > silenceLimits.matchersMax)
    throw badRequest(`filter: at most ${silenceLimits.matchersMax} matchers`);
  return texts.map((text) => {
    try {
      return compileMatcher(parseMatcherText(text));
    } catch (error) {
      throw badRequest(`filter: ${(error as Error).message}`);
    }
  });
}

export interface AlertQuery {
  active: boolean;
  silenced: boolean;
  inhibited: boolean;
  unprocessed: boolean;
  filter: CompiledMatcher[];
  /** A regex over receiver names, as Alertmanager's `receiver` parameter. */
  receiver: string | undefined;
}

function alertQuery(request: Request): AlertQuery {
  const params = new URL(request.url).searchParams;
  const flag = (name: string): boolean => {
    const value = params.get(name);
    if (value === null) return true;
    if (value !== "true" && value !== "false") throw badRequest(`${name}: expected true or false`);
    return value === "true";
  };
  const receiver = params.get("receiver") ?? undefined;
  return {
    active: flag("active"),
    silenced: flag("silenced"),
    inhibited: flag("inhibited"),
    unprocessed: flag("unprocessed"),
    filter: filterMatchers(params.getAll("filter")),
    receiver: receiver === "" ? undefined : receiver,
  };
}

/** Alertmanager's GettableSilence. */
export function gettable(silence: Silence, nowMs: number) {
  return {
    id: silence.id,
    status: { state: silenceState(silence.startsAtMs, silence.endsAtMs, nowMs) },
    updatedAt: new Date(silence.updatedAtMs).toISOString(),
    matchers: silence.matchers,
    startsAt: new Date(silence.startsAtMs).toISOString(),
    endsAt: new Date(silence.endsAtMs).toISOString(),
    createdBy: silence.createdBy,
    comment: silence.comment,
  };
}

/** Alertmanager's order: active by end time, then pending by start time, then expired, latest first. */
function sortLikeAlertmanager(silences: Silence[], nowMs: number): Silence[] {
  const rank = { active: 0, pending: 1, expired: 2 };
  const key = (silence: Silence) => {
    const state = silenceState(silence.startsAtMs, silence.endsAtMs, nowMs);
    const time =
      state === "active" ? silence.endsAtMs : state === "pending" ? silence.startsAtMs : -silence.endsAtMs;
    return [rank[state], time] as const;
  };
  return silences.toSorted((a, b) => {
    const [rankA, timeA] = key(a);
    const [rankB, timeB] = key(b);
    return rankA - rankB || timeA - timeB;
  });
}

/** The client's enabled endpoints as Alertmanager receivers, named `<type>/<endpoint id>`. */
export async function receivers(sql: Sql, clientId: string): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT type || '/' || id AS name FROM endpoints WHERE client_id = ${clientId} AND enabled ORDER BY 1 LIMIT 1000`;
  return rows.map((row) => row.name);
}

/** What `amtool config show` prints: the routing this client has, in Alertmanager's config form. */
function configText(clientId: string, receiverNames: readonly string[]): string {
  const lines = [
    "# Served by the alerting pipeline, not an Alertmanager: rules, endpoints and silences are the",
    "# client's own, managed through the rule service API and /api/v2/silences.",
    "global:",
    "  resolve_timeout: 5m",
    "route:",
    `  receiver: ${JSON.stringify(`client/${clientId}`)}`,
    ...(receiverNames.length === 0 ? [] : ["  routes:"]),
    ...receiverNames.flatMap((name) => [`  - receiver: ${JSON.stringify(name)}`, "    continue: true"]),
    "receivers:",
    `- name: ${JSON.stringify(`client/${clientId}`)}`,
    ...receiverNames.map((name) => `- name: ${JSON.stringify(name)}`),
  ];
  return `${lines.join("\n")}\n`;
}

const badRequest = (message: string) => new HttpError(400, "bad_request", message);
const silenceNotFound = () => new HttpError(404, "not_found", "silence not found");

const isProbe = (request: Request) => request.method === "GET" || request.method === "HEAD";

/** Alertmanager's probes answer in plain text. */
function probeAnswer(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function notAllowed(): Response {
  return new Response("method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
}

/** Alertmanager's error body: a JSON string (amtool decodes it as one). */
function errorResponse(error: unknown, logger: Logger): Response {
  if (!(error instanceof HttpError)) {
    logger.error("alertmanager api request failed", { error });
    return Response.json("internal error", { status: 500 });
  }
  return Response.json(error.message, { status: error.status, headers: error.headers });
}
