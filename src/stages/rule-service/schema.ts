import { textProblem } from "../../core/text.ts";
import { badRequest } from "./http.ts";

/**
 * A deliberately tiny schema language: flat JSON objects of strings, booleans, integers and lists of
 * strings are all this API accepts, and one definition yields both the validator and the OpenAPI JSON
 * Schema.
 */
export interface StringField {
  type: "string";
  minLength?: number;
  /** In code points, as Postgres `length()` counts them. */
  maxLength: number;
  enum?: readonly string[];
  format?: "uuid";
  nullable?: boolean;
  description?: string;
}

export type Field =
  | StringField
  | { type: "boolean"; description?: string }
  | { type: "integer"; minimum: number; maximum: number; nullable?: boolean; description?: string }
  | {
      type: "array";
      items: StringField;
      maxItems: number;
      /** What the items mean together, beyond each one's own checks (e.g. a list with repeats). */
      itemsProblem?: (items: readonly string[]) => string | undefined;
      description?: string;
    };

export interface ObjectSchema {
  fields: Record<string, Field>;
  required: readonly string[];
}

type FieldValue<F> = F extends { type: "boolean" }
  ? boolean
  : F extends { type: "array" }
    ? string[]
    : F extends { type: "integer" }
      ? number | (F extends { nullable: true } ? null : never)
      :
          | (F extends { enum: readonly (infer E)[] } ? E : string)
          | (F extends { nullable: true } ? null : never);

export type Infer<S extends ObjectSchema> = {
  [K in keyof S["fields"] & S["required"][number]]: FieldValue<S["fields"][K]>;
} & {
  [K in Exclude<keyof S["fields"], S["required"][number]>]?: FieldValue<S["fields"][K]>;
};

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

function fieldError(field: Field, value: unknown): string | undefined {
  switch (field.type) {
    case "boolean":
      return typeof value === "boolean" ? undefined : "must be a boolean";
    case "integer":
      if (value === null && field.nullable) return undefined;
      if (typeof value !== "number" || !Number.isInteger(value))
        return field.nullable ? "must be an integer or null" : "must be an integer";
      if (value < field.minimum || value > field.maximum) {
        return `must be between ${field.minimum} and ${field.maximum}`;
      }
      return undefined;
    case "array": {
      if (!Array.isArray(value)) return "must be a list of strings";
      if (value.length > field.maxItems) return `must have at most ${field.maxItems} items`;
      for (const [i, item] of value.entries()) {
        const problem = fieldError(field.items, item);
        if (problem !== undefined) return `item ${i} ${problem}`;
      }
      return field.itemsProblem?.(value as string[]);
    }
    case "string": {
      if (value === null && field.nullable) return undefined;
      if (typeof value !== "string") return field.nullable ? "must be a string or null" : "must be a string";
      // Postgres cannot store these (core/text.ts): a 400 here, not a driver error later.
      const problem = textProblem(value);
      if (problem !== undefined) return problem;
      if (field.enum && !field.enum.includes(value)) return `must be one of ${field.enum.join(", ")}`;
      if (field.format === "uuid" && !isUuid(value)) return "must be a UUID";
      const length = [...value].length;
      if (length < (field.minLength ?? 0)) return `must be at least ${field.minLength} characters`;
      if (length > field.maxLength) return `must be at most ${field.maxLength} characters`;
      return undefined;
    }
  }
}

/**
 * Validates a parsed JSON body; every bad, missing or unknown field is named in one 400.
 *
 * Names are the caller's, so errors are collected in a Map: JSON.parse makes "__proto__" an own
 * property like any other, but assigning `errors["__proto__"] = ...` on a plain object would set its
 * prototype instead (a string is ignored), and such a body used to pass with no error at all.
 */
export function parseObject<S extends ObjectSchema>(schema: S, input: unknown): Infer<S> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw badRequest("the body must be a JSON object", {});
  }
  const errors = new Map<string, string>();
  const record = input as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const field = schemaField(schema, key);
    if (!field) {
      errors.set(key, "unknown field");
      continue;
    }
    const error = fieldError(field, record[key]);
    if (error) errors.set(key, error);
  }
  for (const key of schema.required) {
    if (!Object.hasOwn(record, key)) errors.set(key, "is required");
  }
  if (errors.size > 0) throw badRequest("invalid fields", Object.fromEntries(errors));
  return record as Infer<S>;
}

/** Query strings carry text only: coerce per field type, then validate like a body. */
export function parseQuery<S extends ObjectSchema>(schema: S, params: URLSearchParams): Infer<S> {
  const errors = new Map<string, string>();
  const record: Record<string, unknown> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    const field = schemaField(schema, key);
    if (!field) errors.set(key, "unknown parameter");
    else if (values.length > 1) errors.set(key, "must be given once");
    else record[key] = coerce(field, values[0] ?? "");
  }
  if (errors.size > 0) throw badRequest("invalid query parameters", Object.fromEntries(errors));
  return parseObject(schema, record);
}

/** Own fields only, so "constructor" or "toString" never finds Object.prototype's. */
function schemaField(schema: ObjectSchema, key: string): Field | undefined {
  return Object.hasOwn(schema.fields, key) ? schema.fields[key] : undefined;
}

function coerce(field: Field, text: string): unknown {
  if (field.type === "array") return text === "" ? [] : text.split(",");
  if (field.type === "boolean") return text === "true" ? true : text === "false" ? false : text;
  if (field.type === "integer") return /^-?\d{1,16}$/.test(text) ? Number(text) : text;
  return text;
}

export type JsonSchema = Record<string, unknown>;

export function fieldJsonSchema(field: Field): JsonSchema {
  const { description } = field;
  switch (field.type) {
    case "boolean":
      return { type: "boolean", description };
    case "integer":
      return {
        type: field.nullable ? ["integer", "null"] : "integer",
        minimum: field.minimum,
        maximum: field.maximum,
        description,
      };
    case "array":
      return { type: "array", items: fieldJsonSchema(field.items), maxItems: field.maxItems, description };
    case "string":
      return {
        type: field.nullable ? ["string", "null"] : "string",
        minLength: field.minLength,
        maxLength: field.maxLength,
        enum: field.enum,
        format: field.format,
        description,
      };
  }
}

export function objectJsonSchema(schema: ObjectSchema): JsonSchema {
  return {
    type: "object",
    additionalProperties: false,
    required: [...schema.required],
    properties: Object.fromEntries(Object.entries(schema.fields).map(([k, f]) => [k, fieldJsonSchema(f)])),
  };
}
