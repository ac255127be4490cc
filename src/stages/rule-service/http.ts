import { retryAfterSeconds } from "../../core/rate-limit.ts";
import { readJsonBody as readSharedJsonBody } from "../../runtime/json-body.ts";
/** Field name -> why it was rejected. */
export type FieldErrors = Record<string, string>;

/**
 * An error answered as `{error: {code, message, fields, ...details}}` with `status` and `headers`.
 * The rule service, the console and the alert-producer's ingest all throw it.
 */
export class HttpError extends Error {
  readonly fields?: FieldErrors;
  /** Extra members of the error object, e.g. `current_version` on a version conflict. */
  readonly details?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    extra: { fields?: FieldErrors; details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.fields = extra.fields;
    this.details = extra.details;
    this.headers = extra.headers;
  }
}

export const badRequest = (message: string, fields: FieldErrors): HttpError =>
  new HttpError(400, "invalid_request", message, { fields });

export const notFound = (what: string, fields?: FieldErrors): HttpError =>
  new HttpError(404, "not_found", `${what} not found`, { fields });

export const versionConflict = (currentVersion: number): HttpError =>
  new HttpError(409, "version_conflict", "the resource was changed since it was read", {
    details: { current_version: currentVersion },
  });

export function rateLimited(retryAfterMs: number): HttpError {
  const seconds = retryAfterSeconds(retryAfterMs);
  return new HttpError(429, "rate_limited", `too many requests, retry in ${seconds} s`, {
    headers: { "retry-after": String(seconds) },
  });
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Response {
  return Response.json(body, { status, headers });
}

/** The shared JSON body reader, failing with this API's HttpError. */
export function readJsonBody(req: Request, limitBytes: number): Promise<unknown> {
  return readSharedJsonBody(req, limitBytes, (status, code, message) => new HttpError(status, code, message));
}

/**
 * Constraint violations that input can still provoke despite validation (races, duplicates), mapped
 * to the fields a caller would fix.
 */
const constraintErrors: Record<string, () => HttpError> = {
  clients_name_key: () => conflict({ name: "a client with this name exists" }),
  rules_unique_per_client: () =>
    conflict({ severity: "duplicate", source: "duplicate", name: "a rule with these fields exists" }),
  endpoints_unique_per_rule: () =>
    conflict({ type: "duplicate", value: "this rule already has this endpoint" }),
  rules_client_id_fkey: () => notFound("client", { client_id: "no such client" }),
  api_keys_client_id_fkey: () => notFound("client"),
  endpoints_rule_id_fkey: () => notFound("rule", { rule_id: "no such rule" }),
};

function conflict(fields: FieldErrors): HttpError {
  return new HttpError(409, "conflict", "a resource with these fields already exists", { fields });
}

function isPostgresError(error: unknown): error is { code: string; constraint_name?: string } {
  return error instanceof Error && error.name === "PostgresError";
}

export function errorResponse(error: unknown): Response {
  let http = error instanceof HttpError ? error : undefined;
  if (!http && isPostgresError(error)) {
    const mapped = error.constraint_name ? constraintErrors[error.constraint_name] : undefined;
    if (mapped) http = mapped();
    // Class 22 is "data exception": input the validator let through but Postgres refused.
    else if (error.code.startsWith("22") || error.code === "23514") {
      http = new HttpError(400, "invalid_request", "the database rejected a value");
    }
  }
  if (!http) {
    console.error("rule-service: unhandled error", error);
    http = new HttpError(500, "internal", "internal error");
  }
  const { status, code, message, fields, details, headers } = http;
  return json(status, { error: { code, message, fields, ...details } }, headers);
}
