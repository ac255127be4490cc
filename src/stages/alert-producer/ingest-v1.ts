/**
 * POST /api/v1/alerts: our own format, one alert object or an array of them.
 *
 *   { "alert_id": "optional, 1-1024 chars; empty or absent: derived like the evaluator does",
 *     "severity": "LOW" | "MEDIUM" | "HIGH" | "CRITICAL",
 *     "source": "1-1024 chars", "name": "1-1024 chars",
 *     "context": { "optional": "string values only" },
 *     "event_time": "RFC 3339 (ISO-8601 with a zone), or unix ms; default: when received" }
 *
 * Unknown fields are rejected, so a misspelt optional field is not silently dropped.
 */
import { parseSeverity, SeverityError } from "../../core/severity.ts";
import type { Alert } from "./alerts.ts";
import {
  addContextEntry,
  contextObject,
  FieldErrors,
  fieldPath,
  isPlainObject,
  isUnixMs,
  limits,
  parseTimestampMs,
  requiredText,
  typeOf,
} from "./validate.ts";

const knownFields = new Set(["alert_id", "severity", "source", "name", "context", "event_time"]);

export function parseV1Alerts(body: unknown, nowMs: number): { alerts: Alert[]; errors: FieldErrors } {
  const errors = new FieldErrors();
  const alerts: Alert[] = [];
  if (Array.isArray(body)) {
    body.forEach((item, index) => {
      const alert = parseAlert(item, `[${index}]`, nowMs, errors);
      if (alert) alerts.push(alert);
    });
  } else if (isPlainObject(body)) {
    const alert = parseAlert(body, "", nowMs, errors);
    if (alert) alerts.push(alert);
  } else {
    errors.add("body", `expected an alert object or an array of alerts, got ${typeOf(body)}`);
  }
  return { alerts, errors };
}

function parseAlert(item: unknown, prefix: string, nowMs: number, errors: FieldErrors): Alert | undefined {
  if (!isPlainObject(item)) {
    errors.add(prefix || "body", `expected an alert object, got ${typeOf(item)}`);
    return undefined;
  }
  const before = errors.count;
  const path = (name: string) => fieldPath(prefix, name);
  for (const key of Object.keys(item)) if (!knownFields.has(key)) errors.add(path(key), "unknown field");
  const alertId = optionalAlertId(item.alert_id, path("alert_id"), errors);
  const severity = severityOf(item.severity, path("severity"), errors);
  const source = requiredText(item.source, path("source"), errors);
  const name = requiredText(item.name, path("name"), errors);
  const context = contextOf(item.context, path("context"), errors);
  const eventTimeUnixMs = eventTimeOf(item.event_time, path("event_time"), nowMs, errors);
  if (errors.count > before) return undefined;
  return {
    alertId: alertId ?? "",
    severity: severity as number,
    source: source as string,
    name: name as string,
    context,
    eventTimeUnixMs: eventTimeUnixMs as number,
  };
}

function optionalAlertId(value: unknown, path: string, errors: FieldErrors): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  return requiredText(value, path, errors);
}

function severityOf(value: unknown, path: string, errors: FieldErrors): number | undefined {
  if (value === undefined || value === null) {
    errors.add(path, "required");
    return undefined;
  }
  try {
    return parseSeverity(value, path);
  } catch (error) {
    if (!(error instanceof SeverityError)) throw error;
    errors.add(path, error.reason);
    return undefined;
  }
}

function contextOf(value: unknown, path: string, errors: FieldErrors): Record<string, string> {
  const context = new Map<string, string>();
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) {
    errors.add(path, `expected an object of strings, got ${typeOf(value)}`);
    return {};
  }
  const entries = Object.entries(value);
  if (entries.length > limits.contextEntriesMax) {
    errors.add(path, `more than ${limits.contextEntriesMax} entries`);
    return {};
  }
  for (const [key, entry] of entries) addContextEntry(context, key, entry, `${path}.${key}`, errors);
  return contextObject(context, path, errors);
}

function eventTimeOf(value: unknown, path: string, nowMs: number, errors: FieldErrors): number | undefined {
  if (value === undefined || value === null) return nowMs;
  if (typeof value === "number") {
    if (isUnixMs(value)) return value;
    errors.add(path, "expected unix milliseconds: an integer from 0");
    return undefined;
  }
  if (typeof value === "string") {
    const ms = parseTimestampMs(value);
    if (ms !== undefined && isUnixMs(ms)) return ms;
    errors.add(path, "expected an RFC 3339 timestamp with a zone, e.g. 2024-05-01T12:00:00Z");
    return undefined;
  }
  errors.add(path, `expected a timestamp string or unix milliseconds, got ${typeOf(value)}`);
  return undefined;
}
