import type { ObjectSchema } from "./schema.ts";

/** Schema pieces shared by several resources. */
export const versionField = {
  type: "integer",
  minimum: 1,
  maximum: 2_147_483_647,
  description: "the version last read; a mismatch answers 409 with current_version",
} as const;

export const deleteQuery = {
  fields: { version: versionField },
  required: [],
} as const satisfies ObjectSchema;

export const uuidJsonSchema = { type: "string", format: "uuid" };
export const timestampJsonSchema = { type: "string", format: "date-time" };
