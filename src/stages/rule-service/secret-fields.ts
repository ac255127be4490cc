/** What API keys and ingest credentials share: a name, an optional expiry, a cap on active ones. */
import type postgres from "postgres";
import { badRequest, HttpError } from "./http.ts";
import type { Db } from "./store.ts";

export const secretNameMaxLength = 200;

export const expiresAtField = {
  type: "string",
  maxLength: 40,
  nullable: true,
  description: "RFC 3339 date-time in the future, e.g. 2030-01-31T00:00:00Z; omitted or null: never expires",
} as const;

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** The expiry a caller asked for, or null for none; 400 naming `expires_at` when it is not a future time. */
export function parseExpiresAt(text: string | null | undefined): Date | null {
  if (text === undefined || text === null) return null;
  const invalid = () => badRequest("invalid fields", { expires_at: "must be an RFC 3339 date-time" });
  const [, year, month, day, hour, minute, second, , , offsetHour, offsetMinute] = (rfc3339.exec(text) ??
    []) as (string | undefined)[];
  if (year === undefined) throw invalid();
  const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
  const inRange =
    Number(month) >= 1 &&
    Number(month) <= 12 &&
    Number(day) >= 1 &&
    Number(day) <= daysInMonth &&
    Number(hour) <= 23 &&
    Number(minute) <= 59 &&
    Number(second) <= 59 &&
    Number(offsetHour ?? 0) <= 23 &&
    Number(offsetMinute ?? 0) <= 59;
  const at = new Date(text);
  if (!inRange || Number.isNaN(at.getTime())) throw invalid();
  if (at.getTime() <= Date.now()) throw badRequest("invalid fields", { expires_at: "must be in the future" });
  return at;
}

/** Neither revoked nor expired, in the tables with `revoked_at` and `expires_at`. */
export function activeClause(db: Db): postgres.Fragment {
  return db`revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`;
}

export function tooManyActive(what: string, max: number): HttpError {
  return new HttpError(409, "limit_reached", `at most ${max} active ${what}: revoke one first`);
}
