/**
 * POST /api/v2/alerts: the Prometheus Alertmanager v2 API, so Prometheus and amtool can send alerts
 * here as if we were an Alertmanager. The body is an array of
 *
 *   { "labels": {..}, "annotations"?: {..}, "startsAt"?: RFC 3339, "endsAt"?: RFC 3339, "generatorURL"?: ".." }
 *
 * (label and annotation values are strings) and each element becomes one AlertNew:
 *
 *   severity            labels.severity, case-insensitive: critical -> CRITICAL, high -> HIGH,
 *                       medium and warning -> MEDIUM, low and info -> LOW; missing or other -> 400
 *   source              labels[INGEST_SOURCE_LABEL] (default `instance`), else labels.job; neither -> 400
 *   name                labels.alertname; missing -> 400
 *   event_time_unix_ms  startsAt; when absent (or Go's zero time) the time it was received
 *   alert_id            am-<fingerprint>-<startsAt unix ms>. The fingerprint is Alertmanager's own (the one
 *                       its UI and API show): FNV-1a 64 over all labels sorted by name, each written as
 *                       name, 0xFF, value, 0xFF; 16 hex digits. Alertmanager and Prometheus re-send a firing
 *                       alert with the same labels and startsAt, so re-sends get the same id and dedupe
 *                       downstream, while a new firing (new startsAt) is a new alert. The resolved copy
 *                       (endsAt in the past) has the same id too, so it does not notify again.
 *   context             every other label under its own name (all but alertname, severity and the
 *                       label used as source), `annotation.<name>` per annotation, `generatorURL`, and
 *                       `endsAt` as sent (omitted when absent or zero). Those last two replace a label of
 *                       the same name.
 */
import { Severity } from "../../gen/alerting/v1/alert_pb.ts";
import type { Alert } from "./alerts.ts";
import {
  addContextEntry,
  contextObject,
  FieldErrors,
  isPlainObject,
  isStorableText,
  isUnixMs,
  limits,
  parseTimestampMs,
  requiredText,
  typeOf,
} from "./validate.ts";

export interface AlertmanagerOptions {
  /** The label whose value becomes the source (INGEST_SOURCE_LABEL); `job` is the fallback. */
  sourceLabel: string;
  nowMs: number;
}

const severityLabels = new Map([
  ["critical", Severity.CRITICAL],
  ["high", Severity.HIGH],
  ["medium", Severity.MEDIUM],
  ["warning", Severity.MEDIUM],
  ["low", Severity.LOW],
  ["info", Severity.LOW],
]);
const severityHint = "critical, high, medium (or warning), low (or info)";
const fallbackSourceLabel = "job";
/** Go's time.Time{} as RFC 3339: what Go clients send for "not set". */
const goZeroTimeMs = Date.parse("0001-01-01T00:00:00Z");

export function mapAlertmanagerAlerts(
  body: unknown,
  options: AlertmanagerOptions,
): { alerts: Alert[]; errors: FieldErrors } {
  const errors = new FieldErrors();
  const alerts: Alert[] = [];
  if (!Array.isArray(body)) {
    errors.add("body", `expected an array of alerts, got ${typeOf(body)}`);
    return { alerts, errors };
  }
  body.forEach((item, index) => {
    const alert = mapAlert(item, `[${index}]`, options, errors);
    if (alert) alerts.push(alert);
  });
  return { alerts, errors };
}

function mapAlert(
  item: unknown,
  prefix: string,
  options: AlertmanagerOptions,
  errors: FieldErrors,
): Alert | undefined {
  if (!isPlainObject(item)) {
    errors.add(prefix, `expected an alert object, got ${typeOf(item)}`);
    return undefined;
  }
  const before = errors.count;
  const labels = stringMap(item.labels, `${prefix}.labels`, true, errors);
  const annotations = stringMap(item.annotations, `${prefix}.annotations`, false, errors);
  const startsAtMs = optionalTime(item.startsAt, `${prefix}.startsAt`, errors);
  const endsAtMs = optionalTime(item.endsAt, `${prefix}.endsAt`, errors);
  const generatorUrl = item.generatorURL;
  if (generatorUrl !== undefined && generatorUrl !== null && typeof generatorUrl !== "string")
    errors.add(`${prefix}.generatorURL`, `expected a string, got ${typeOf(generatorUrl)}`);
  if (!labels || errors.count > before) return undefined;

  const severity = severityOf(labels.get("severity"), `${prefix}.labels.severity`, errors);
  const name = requiredText(labels.get("alertname"), `${prefix}.labels.alertname`, errors);
  const sourceLabel = labels.has(options.sourceLabel) ? options.sourceLabel : fallbackSourceLabel;
  let source: string | undefined;
  if (labels.has(sourceLabel))
    source = requiredText(labels.get(sourceLabel), `${prefix}.labels.${sourceLabel}`, errors);
  else errors.add(`${prefix}.labels.${options.sourceLabel}`, `required (or a ${fallbackSourceLabel} label)`);

  const context = new Map<string, string>();
  for (const [label, value] of labels) {
    if (label !== "alertname" && label !== "severity" && label !== sourceLabel)
      addContextEntry(context, label, value, `${prefix}.labels.${label}`, errors);
  }
  for (const [annotation, value] of annotations ?? []) {
    addContextEntry(
      context,
      `annotation.${annotation}`,
      value,
      `${prefix}.annotations.${annotation}`,
      errors,
    );
  }
  if (typeof generatorUrl === "string" && generatorUrl !== "")
    addContextEntry(context, "generatorURL", generatorUrl, `${prefix}.generatorURL`, errors);
  if (endsAtMs !== undefined) addContextEntry(context, "endsAt", item.endsAt, `${prefix}.endsAt`, errors);
  const contextRecord = contextObject(context, prefix, errors);
  if (errors.count > before) return undefined;

  const eventTimeUnixMs = startsAtMs ?? options.nowMs;
  return {
    alertId: `am-${labelSetFingerprint(labels)}-${eventTimeUnixMs}`,
    severity: severity as number,
    source: source as string,
    name: name as string,
    context: contextRecord,
    eventTimeUnixMs,
  };
}

/** A JSON object of strings as a Map (so no label name can touch Object.prototype). */
function stringMap(
  value: unknown,
  path: string,
  required: boolean,
  errors: FieldErrors,
): Map<string, string> | undefined {
  if (value === undefined || value === null) {
    if (required) errors.add(path, "required");
    return undefined;
  }
  if (!isPlainObject(value)) {
    errors.add(path, `expected an object of strings, got ${typeOf(value)}`);
    return undefined;
  }
  const entries = Object.entries(value);
  if (entries.length > limits.contextEntriesMax) {
    errors.add(path, `more than ${limits.contextEntriesMax} entries`);
    return undefined;
  }
  const map = new Map<string, string>();
  for (const [key, entry] of entries) {
    const entryPath = `${path}.${key}`;
    if (typeof entry !== "string") errors.add(entryPath, `expected a string, got ${typeOf(entry)}`);
    else if (isStorableText(key, entryPath, errors, "name ") && isStorableText(entry, entryPath, errors))
      map.set(key, entry);
  }
  return map;
}

function severityOf(value: string | undefined, path: string, errors: FieldErrors): number | undefined {
  if (value === undefined) {
    errors.add(path, `required: ${severityHint}`);
    return undefined;
  }
  const severity = severityLabels.get(value.toLowerCase());
  if (severity === undefined) {
    errors.add(path, `unknown severity ${JSON.stringify(value.slice(0, 64))}, expected ${severityHint}`);
    return undefined;
  }
  return severity;
}

/** An optional RFC 3339 time as unix ms; absent or Go's zero time -> undefined. */
function optionalTime(value: unknown, path: string, errors: FieldErrors): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const ms = typeof value === "string" ? parseTimestampMs(value) : undefined;
  if (ms === goZeroTimeMs) return undefined;
  if (ms === undefined || !isUnixMs(ms)) {
    errors.add(path, "expected an RFC 3339 timestamp with a zone, e.g. 2024-05-01T12:00:00Z");
    return undefined;
  }
  return ms;
}

const utf8 = new TextEncoder();
const separatorByte = 0xff;

/**
 * Alertmanager's fingerprint of a label set (prometheus/common model.LabelSet.Fingerprint): FNV-1a 64
 * over the labels sorted by name (bytewise), each as name, 0xFF, value, 0xFF; as 16 hex digits.
 * The 64-bit state is kept in two 32-bit halves, since BigInt per byte would be ~50x slower.
 */
export function labelSetFingerprint(labels: ReadonlyMap<string, string>): string {
  const names = [...labels.keys()].map((name) => ({ name, bytes: utf8.encode(name) }));
  names.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  // FNV offset basis 0xcbf29ce484222325.
  let high = 0xcbf29ce4;
  let low = 0x84222325;
  const addByte = (byte: number) => {
    low ^= byte;
    // Multiply by the FNV prime 2^40 + 0x1b3, modulo 2^64: low * 0x1b3 may exceed 32 bits, its
    // carry goes to the high half, and low * 2^40 lands in the high half as low << 8.
    const lowProduct = (low >>> 0) * 0x1b3;
    const carry = Math.floor(lowProduct / 0x1_0000_0000);
    high = ((high >>> 0) * 0x1b3 + ((low << 8) >>> 0) + carry) >>> 0;
    low = lowProduct >>> 0;
  };
  for (const { name, bytes } of names) {
    for (const byte of bytes) addByte(byte);
    addByte(separatorByte);
    for (const byte of utf8.encode(labels.get(name) as string)) addByte(byte);
    addByte(separatorByte);
  }
  return (high >>> 0).toString(16).padStart(8, "0") + (low >>> 0).toString(16).padStart(8, "0");
}
