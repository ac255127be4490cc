import { badRequest } from "./http.ts";
import { isUuid, type JsonSchema, type ObjectSchema } from "./schema.ts";

export const pageLimitDefault = 50;
const pageLimitMax = 500;

export const pageQueryFields = {
  limit: { type: "integer", minimum: 1, maximum: pageLimitMax, description: `default ${pageLimitDefault}` },
  cursor: { type: "string", maxLength: 200, description: "next_cursor of the previous page" },
} as const satisfies ObjectSchema["fields"];

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Lists are ordered by id; the cursor is the last id seen, wrapped so callers treat it as opaque. */
export function decodeCursor(cursor: string | undefined, idKind: "uuid" | "int64"): string | null {
  if (cursor === undefined) return null;
  let id: unknown;
  try {
    id = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")).after;
  } catch {
    id = undefined;
  }
  const valid = typeof id === "string" && (idKind === "uuid" ? isUuid(id) : isInt64Id(id));
  if (!valid) throw badRequest("invalid cursor", { cursor: "is not a cursor this API returned" });
  return id as string;
}

/** `rows` must have been fetched with `limit + 1` so the extra row tells whether a next page exists. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const more = rows.length > limit && last !== undefined;
  return {
    items,
    next_cursor: more ? Buffer.from(JSON.stringify({ after: last.id })).toString("base64url") : null,
  };
}

export function pageJsonSchema(item: JsonSchema): JsonSchema {
  return {
    type: "object",
    required: ["items", "next_cursor"],
    properties: { items: { type: "array", items: item }, next_cursor: { type: ["string", "null"] } },
  };
}

const int64Max = 9_223_372_036_854_775_807n;

export function isInt64Id(text: string): boolean {
  return /^[1-9]\d{0,18}$/.test(text) && BigInt(text) <= int64Max;
}
