/**
 * POST /api/v2/alerts: the Prometheus Alertmanager v2 API, so Prometheus and amtool can send alerts
 * here as if we were an Alertmanager. The body is an array of
 *
 *   { "labels": {..}, "annotations"?: {..}, "startsAt"?: RFC 3339, "endsAt"?: RFC 3339, "generatorURL"?: ".." }
 *
 * (label and annotation values are strings) and each element becomes one AlertNew. Like Alertmanager,
 * each alert stands on its own: one that cannot be mapped is rejected alone (its fields named), the
 * others are written. Only what cannot be stored is refused: malformed JSON types, NUL or unpaired
 * surrogates, over-long texts, bad timestamps, a missing alertname.
 *
 *   severity            labels.severity through the severity mapping (case-insensitive): by default
 *                       critical and page -> CRITICAL, high and error -> HIGH, medium and warning ->
 *                       MEDIUM, low and info -> LOW, extended by INGEST_SEVERITY_MAP; missing or any
 *                       other value -> INGEST_SEVERITY_DEFAULT (MEDIUM), and the value sent is kept in
 *                       context as `severity`
 *   source              labels[INGEST_SOURCE_LABEL] (default `instance`), else labels.job, else
 *                       INGEST_SOURCE_DEFAULT (`unknown`): a label with an empty value counts as absent,
 *                       as in Prometheus
 *   name                labels.alertname; missing -> rejected
 *   event_time_unix_ms  startsAt; when absent (or Go's zero time) the time it was received
 *   alert_id            am-<fingerprint>: Alertmanager's own (the one its UI and API show): FNV-1a 64
 *                       over all labels sorted by name, each written as name, 0xFF, value, 0xFF; 16 hex
 *                       digits. The alert's identity, like Alertmanager's: a re-send with another startsAt
 *                       (a Prometheus restart, amtool without --start) is the same alert
 *   status              resolved when endsAt is in the past when received, else firing. The aggregator
 *                       keeps a state per (client, scope, alert_id, route): a firing alert notifies once per
 *                       episode, its resolution once; a resolved alert it never saw firing notifies nothing
 *   ends_at_unix_ms     endsAt (0 when absent or zero): the aggregator resolves the alert when it passes
 *   context             every other label under its own name (all but alertname, severity and the
 *                       label used as source), `annotation.<name>` per annotation, `generatorURL`, and
 *                       `endsAt` as sent (omitted when absent or zero). Those last two replace a label of
 *                       the same name.
 */

import { textProblem } from "../../core/text.ts";
import { AlertStatus, Severity } from "../../gen/alerting/v1/alert_pb.ts";
import { ConfigError, envPairs, envString } from "../../runtime/config.ts";
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

/** How labels become an alert's severity and source: the INGEST_* settings. */
export interface AlertmanagerMapping {
  /** Lower-case severity label value -> Severity. */
  severityLabels: ReadonlyMap<string, Severity>;
  /** For a missing or unmapped severity label. */
  severityDefault: Severity;
  /** The label whose value becomes the source (INGEST_SOURCE_LABEL); `job` is the fallback. */
  sourceLabel: string;
  /** The source when neither label is there. */
  sourceDefault: string;
}

export interface AlertmanagerOptions extends AlertmanagerMapping {
  nowMs: number;
}

export const defaultSeverityLabels: ReadonlyMap<string, Severity> = new Map([
  ["critical", Severity.CRITICAL],
  ["page", Severity.CRITICAL],
  ["high", Severity.HIGH],
  ["error", Severity.HIGH],
  ["medium", Severity.MEDIUM],
  ["warning", Severity.MEDIUM],
  ["low", Severity.LOW],
  ["info", Severity.LOW],
]);
const severityByName = new Map([
  ["LOW", Severity.LOW],
  ["MEDIUM", Severity.MEDIUM],
  ["HIGH", Severity.HIGH],
  ["CRITICAL", Severity.CRITICAL],
]);
const fallbackSourceLabel = "job";

/**
 * The mapping from the environment: INGEST_SEVERITY_MAP ("page=CRITICAL,sev1=HIGH": label values,
 * case-insensitive, added to or replacing the defaults), INGEST_SEVERITY_DEFAULT (MEDIUM),
 * INGEST_SOURCE_LABEL (instance), INGEST_SOURCE_DEFAULT (unknown). A bad one is a ConfigError.
 */
export function alertmanagerMappingFromEnv(
  env: Record<string, string | undefined> = process.env,
): AlertmanagerMapping {
  const severity = (variable: string, name: string): Severity => {
    const value = severityByName.get(name.toUpperCase());
    if (value === undefined)
      throw new ConfigError(variable, `unknown severity "${name}", expected LOW, MEDIUM, HIGH or CRITICAL`);
    return value;
  };
  const severityLabels = new Map(defaultSeverityLabels);
  for (const [label, name] of envPairs("INGEST_SEVERITY_MAP", env))
    severityLabels.set(label.toLowerCase(), severity("INGEST_SEVERITY_MAP", name));
  const sourceDefault = envString("INGEST_SOURCE_DEFAULT", "unknown", env);
  const problem = textProblem(sourceDefault);
  if (problem !== undefined || sourceDefault.length > limits.textLengthMax)
    throw new ConfigError(
      "INGEST_SOURCE_DEFAULT",
      problem ?? `longer than ${limits.textLengthMax} characters`,
    );
  return {
    severityLabels,
    severityDefault: severity("INGEST_SEVERITY_DEFAULT", envString("INGEST_SEVERITY_DEFAULT", "MEDIUM", env)),
    sourceLabel: envString("INGEST_SOURCE_LABEL", "instance", env),
    sourceDefault,
  };
}

/** One alert of the request that could not be mapped: its index and why, per field. */
export interface RejectedAlert {
  index: number;
  fields: Record<string, string>;
}

export interface MappedAlerts {
  /** The alerts that mapped, each with its index in the request. */
  alerts: { index: number; alert: Alert }[];
  rejected: RejectedAlert[];
  /** Set when the body as a whole is unusable (not an array). */
  bodyError?: string;
}
/** Go's time.Time{} as RFC 3339: what Go clients send for "not set". */
const goZeroTimeMs = Date.parse("0001-01-01T00:00:00Z");

export function mapAlertmanagerAlerts(body: unknown, options: AlertmanagerOptions): MappedAlerts {
  const mapped: MappedAlerts = { alerts: [], rejected: [] };
  if (!Array.isArray(body)) {
    mapped.bodyError = `expected an array of alerts, got ${typeOf(body)}`;
    return mapped;
  }
  body.forEach((item, index) => {
    const errors = new FieldErrors();
    const alert = mapAlert(item, options, errors);
    if (alert && errors.count === 0) mapped.alerts.push({ index, alert });
    else mapped.rejected.push({ index, fields: errors.toJSON() });
  });
  return mapped;
}

/** Maps one alert; any problem is recorded in `errors` under a path relative to the alert. */
function mapAlert(item: unknown, options: AlertmanagerOptions, errors: FieldErrors): Alert | undefined {
  if (!isPlainObject(item)) {
    errors.add("alert", `expected an alert object, got ${typeOf(item)}`);
    return undefined;
  }
  const labels = stringMap(item.labels, "labels", true, errors);
  const annotations = stringMap(item.annotations, "annotations", false, errors);
  const startsAtMs = optionalTime(item.startsAt, "startsAt", errors);
  const endsAtMs = optionalTime(item.endsAt, "endsAt", errors);
  const generatorUrl = item.generatorURL;
  if (generatorUrl !== undefined && generatorUrl !== null && typeof generatorUrl !== "string")
    errors.add("generatorURL", `expected a string, got ${typeOf(generatorUrl)}`);
  if (!labels || errors.count > 0) return undefined;

  const severityLabel = labels.get("severity");
  const mappedSeverity = severityLabel && options.severityLabels.get(severityLabel.toLowerCase());
  const name = requiredText(labels.get("alertname"), "labels.alertname", errors);
  const sourceLabel = [options.sourceLabel, fallbackSourceLabel].find((label) => labels.get(label));
  const source =
    sourceLabel === undefined
      ? options.sourceDefault
      : requiredText(labels.get(sourceLabel), `labels.${sourceLabel}`, errors);

  const context = new Map<string, string>();
  for (const [label, value] of labels) {
    const mappedAway =
      label === "alertname" || label === sourceLabel || (label === "severity" && mappedSeverity);
    if (!mappedAway) addContextEntry(context, label, value, `labels.${label}`, errors);
  }
  for (const [annotation, value] of annotations ?? [])
    addContextEntry(context, `annotation.${annotation}`, value, `annotations.${annotation}`, errors);
  if (typeof generatorUrl === "string" && generatorUrl !== "")
    addContextEntry(context, "generatorURL", generatorUrl, "generatorURL", errors);
  if (endsAtMs !== undefined) addContextEntry(context, "endsAt", item.endsAt, "endsAt", errors);
  const contextRecord = contextObject(context, "labels", errors);
  if (errors.count > 0) return undefined;

  const eventTimeUnixMs = startsAtMs ?? options.nowMs;
  const resolved = endsAtMs !== undefined && endsAtMs <= options.nowMs;
  return {
    alertId: `am-${labelSetFingerprint(labels)}`,
    status: resolved ? AlertStatus.RESOLVED : AlertStatus.FIRING,
    ...(endsAtMs === undefined ? {} : { endsAtUnixMs: endsAtMs }),
    severity: mappedSeverity || options.severityDefault,
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
