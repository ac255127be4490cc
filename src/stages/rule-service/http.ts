/** The rule service's errors, on the shared HTTP pieces of src/runtime/http.ts. */
import { type FieldErrors, HttpError, json } from "../../runtime/http.ts";

export { type FieldErrors, HttpError, json, rateLimited, readJsonBody } from "../../runtime/http.ts";

export const badRequest = (message: string, fields: FieldErrors): HttpError =>
  new HttpError(400, "invalid_request", message, { fields });

export const notFound = (what: string, fields?: FieldErrors): HttpError =>
  new HttpError(404, "not_found", `${what} not found`, { fields });

export const versionConflict = (currentVersion: number): HttpError =>
  new HttpError(409, "version_conflict", "the resource was changed since it was read", {
    details: { current_version: currentVersion },
  });

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
