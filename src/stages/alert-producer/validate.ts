/**
 * Checks shared by both ingest APIs. Each check records a reason under the field's path (e.g.
 * `[3].severity`) and carries on, so one 400 names every bad field, not just the first.
 */
import { textProblem } from "../../core/text.ts";

/** Limits that keep accepted alerts acceptable downstream (the evaluator rejects longer texts). */
export const limits = {
  textLengthMax: 1024,
  contextEntriesMax: 256,
  contextKeyLengthMax: 256,
  contextValueLengthMax: 16_384,
  /** The encoded AlertNew; far below the topics' 1 MB message limit. */
  alertBytesMax: 256 * 1024,
} as const;

/** At most this many field errors are listed; the message still says how many there were. */
const reportedErrorsMax = 100;

export class FieldErrors {
  readonly #fields = new Map<string, string>();
  count = 0;

  add(path: string, reason: string): void {
    this.count++;
    if (this.#fields.size < reportedErrorsMax) this.#fields.set(path, reason);
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#fields);
  }
}

/** `prefix` + `name` as a field path: "[3]" + "severity" -> "[3].severity", "" + "source" -> "source". */
export function fieldPath(prefix: string, name: string): string {
  return prefix === "" ? name : `${prefix}.${name}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function typeOf(value: unknown): string {
  if (value === null) return "null";
  return Array.isArray(value) ? "array" : typeof value;
}

/**
 * True when `text` can be stored (see core/text.ts: no NUL, no unpaired surrogate); otherwise records
 * why under `path`. JSON.parse turns the escapes "\u0000" and "\ud800" into exactly such strings.
 */
export function isStorableText(text: string, path: string, errors: FieldErrors, what = ""): boolean {
  const problem = textProblem(text);
  if (problem !== undefined) errors.add(path, `${what}${problem}`);
  return problem === undefined;
}

/** A required non-empty string of at most `textLengthMax` characters. */
export function requiredText(value: unknown, path: string, errors: FieldErrors): string | undefined {
  if (value === undefined || value === null) errors.add(path, "required");
  else if (typeof value !== "string") errors.add(path, `expected a string, got ${typeOf(value)}`);
  else if (value === "") errors.add(path, "must not be empty");
  else if (value.length > limits.textLengthMax)
    errors.add(path, `longer than ${limits.textLengthMax} characters`);
  else if (isStorableText(value, path, errors)) return value;
  return undefined;
}

/** Adds string entries to `context`, checking each key and value against the limits. */
export function addContextEntry(
  context: Map<string, string>,
  key: string,
  value: unknown,
  path: string,
  errors: FieldErrors,
): void {
  if (typeof value !== "string") errors.add(path, `expected a string, got ${typeOf(value)}`);
  else if (key === "" || key.length > limits.contextKeyLengthMax)
    errors.add(path, `key must be 1-${limits.contextKeyLengthMax} characters`);
  else if (value.length > limits.contextValueLengthMax)
    errors.add(path, `longer than ${limits.contextValueLengthMax} characters`);
  else if (isStorableText(key, path, errors, "key ") && isStorableText(value, path, errors))
    context.set(key, value);
}

/** The context map as an object; fromEntries keeps a key like __proto__ an ordinary label. */
export function contextObject(
  context: Map<string, string>,
  path: string,
  errors: FieldErrors,
): Record<string, string> {
  if (context.size > limits.contextEntriesMax)
    errors.add(path, `more than ${limits.contextEntriesMax} context entries`);
  return Object.fromEntries(context);
}

// RFC 3339, the ISO-8601 profile JSON APIs and Go use: date, time, optional fraction, zone required.
const rfc3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;
const unixMsMax = 8_640_000_000_000_000;

/** An RFC 3339 timestamp as unix ms (fractions beyond ms are cut off), or undefined if malformed. */
export function parseTimestampMs(text: string): number | undefined {
  const match = rfc3339.exec(text);
  if (!match) return undefined;
  const [, date, time, fraction = "0", zone] = match;
  const ms = Date.parse(`${date}T${time}.${fraction.slice(0, 3).padEnd(3, "0")}${zone?.toUpperCase()}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Unix ms at or after 1970 and within what a JS Date can hold. */
export function isUnixMs(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= unixMsMax;
}
