/**
 * Alert severities: the names used by rules and the HTTP API, and the enum numbers of the wire contract
 * (proto/alerting/v1/alert.proto). In rules, 0 (SEVERITY_UNSPECIFIED) stands for the wildcard `*`.
 */

export const SEVERITY_NAMES = ["LOW", "MEDIUM", "HIGH", "CRITICAL"] as const;
export type SeverityName = (typeof SEVERITY_NAMES)[number];

/** The rule severity that matches every alert severity. */
export const SEVERITY_WILDCARD = 0;
export const SEVERITY_MIN = 1;
export const SEVERITY_MAX = 4;

/** Bad severity input, naming the field it came from so the caller can report it as-is. */
export class SeverityError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "SeverityError";
  }
}

export function isSeverityNumber(value: number): boolean {
  return Number.isInteger(value) && value >= SEVERITY_MIN && value <= SEVERITY_MAX;
}

/** LOW -> 1 ... CRITICAL -> 4. Case-sensitive, like the rest of rule matching. */
export function parseSeverity(value: unknown, field = "severity"): number {
  if (typeof value !== "string") throw new SeverityError(field, `expected a string, got ${typeof value}`);
  const index = (SEVERITY_NAMES as readonly string[]).indexOf(value);
  if (index < 0) {
    throw new SeverityError(
      field,
      `unknown severity ${JSON.stringify(value)}, expected one of ${SEVERITY_NAMES.join("|")}`,
    );
  }
  return index + SEVERITY_MIN;
}

/** Like parseSeverity, but also accepts `*` (-> SEVERITY_WILDCARD), for rule definitions. */
export function parseSeverityPattern(value: unknown, field = "severity"): number {
  return value === "*" ? SEVERITY_WILDCARD : parseSeverity(value, field);
}

/** 1 -> LOW ... 4 -> CRITICAL. Only for numbers already known to be valid: anything else is a bug. */
export function severityName(severity: number): SeverityName {
  const name = SEVERITY_NAMES[severity - SEVERITY_MIN];
  if (name === undefined || !Number.isInteger(severity))
    throw new RangeError(`not a severity number: ${severity}`);
  return name;
}

/** severityName, with SEVERITY_WILDCARD -> `*`. */
export function severityPatternName(severity: number): SeverityName | "*" {
  return severity === SEVERITY_WILDCARD ? "*" : severityName(severity);
}
