/**
 * GET /api/v2/alerts and /api/v2/alerts/groups: Alertmanager's view of the alerts a client was
 * notified of (or would have been), read from its notification rows, newest per fingerprint. An
 * Alertmanager alert (one with a lifecycle) is shown while its state is firing, until its end; a v1
 * alert until `endsAt` as the sender gave it, else five minutes (Alertmanager's resolve_timeout) after
 * it arrived. It is `suppressed` while one of the client's active silences matches its labels, with
 * the silences' ids in `silencedBy`, as Alertmanager computes it at read time.
 */
import type { Sql } from "../../adapters/postgres.ts";
import { listSilences } from "../../adapters/silence-store.ts";
import { compileLinearRegex } from "../../core/linear-regex.ts";
import { SEVERITY_MIN, SEVERITY_NAMES } from "../../core/severity.ts";
import { alertLabels, compileMatcher, silenceMatches, silenceState } from "../../core/silence.ts";
import { HttpError } from "../../runtime/http.ts";
import { labelSetFingerprint } from "./alertmanager.ts";
import type { AlertQuery } from "./alertmanager-api.ts";
import { parseTimestampMs } from "./validate.ts";

/** Alertmanager's default resolve_timeout: an alert sent without an end ends this long after. */
const resolveTimeoutMs = 5 * 60 * 1000;
/** Notification rows read per request at most, newest first. */
const rowsMax = 5000;
/** Rows older than this are not read: no alert without an end time stays open that long. */
const lookbackMs = 24 * 3600 * 1000;

interface NotificationRow {
  alert_id: string;
  route: string;
  kind: string;
  /** The alert's lifecycle state, for Alertmanager alerts: firing or resolved. */
  state: string | null;
  state_ends_at: Date | null;
  last_seen_at: Date | null;
  severity: string;
  source: string;
  name: string;
  context: Record<string, unknown>;
  event_time: Date;
  created_at: Date;
  updated_at: Date;
  receivers: string[];
}

/** Alertmanager's GettableAlert. */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  fingerprint: string;
  receivers: { name: string }[];
  status: { state: "active" | "suppressed" | "unprocessed"; silencedBy: string[]; inhibitedBy: string[] };
  generatorURL?: string;
}

export async function readAlerts(
  sql: Sql,
  clientId: string,
  query: AlertQuery,
  nowMs: number,
): Promise<GettableAlert[]> {
  const [rows, silences] = await Promise.all([
    sql<NotificationRow[]>`
      SELECT n.alert_id, n.route, n.kind, n.severity, n.source, n.name, n.context, n.event_time, n.created_at,
        n.updated_at, s.state, s.ends_at AS state_ends_at, s.last_seen_at,
        -- The rules the route's latest submission named (a reminder or a joining rule's row names
        -- fewer), else the row's.
        ARRAY(SELECT DISTINCT e.type || '/' || e.id FROM endpoints e
              WHERE e.client_id = n.client_id AND e.enabled
                AND e.rule_id = ANY (CASE WHEN s.episode = n.episode AND s.matched_rule_ids IS NOT NULL
                                          THEN s.matched_rule_ids ELSE n.rule_ids END)
              ORDER BY 1) AS receivers
      FROM notifications n
      LEFT JOIN alert_states s ON s.client_id = n.client_id AND s.scope = n.scope AND s.alert_key = n.alert_id
        AND s.route = n.route
      WHERE n.client_id = ${clientId} AND (n.created_at >= ${new Date(nowMs - lookbackMs)} OR s.state = 'firing')
      ORDER BY n.id DESC LIMIT ${rowsMax}`,
    listSilences(sql, clientId, nowMs),
  ]);
  const activeSilences = silences
    .filter((silence) => silenceState(silence.startsAtMs, silence.endsAtMs, nowMs) === "active")
    .map((silence) => ({ id: silence.id, matchers: silence.matchers.map(compileMatcher) }));
  const receiver = query.receiver === undefined ? undefined : compileReceiverRegex(query.receiver);

  // The newest row of a fingerprint gives the alert; the newest row of each of its other routes
  // (src/core/policy.ts) adds its receivers, as Alertmanager lists every receiver an alert was routed
  // to. Older rows of a route are left out: their rules may have changed since.
  const byFingerprint = new Map<string, GettableAlert>();
  const routesSeen = new Set<string>();
  for (const row of rows) {
    const alert = gettableAlert(row, nowMs);
    if (alert === undefined) continue;
    const route = `${alert.fingerprint}\u0000${row.route}`;
    if (routesSeen.has(route)) continue;
    routesSeen.add(route);
    const newer = byFingerprint.get(alert.fingerprint);
    if (newer === undefined) byFingerprint.set(alert.fingerprint, alert);
    else newer.receivers = unionOfReceivers(newer.receivers, alert.receivers);
  }
  const shown: GettableAlert[] = [];
  for (const alert of byFingerprint.values()) {
    const labels = new Map(Object.entries(alert.labels));
    if (!silenceMatches(query.filter, labels)) continue;
    if (receiver && !alert.receivers.some(({ name }) => receiver.matches(name))) continue;
    const silencedBy = activeSilences
      .filter((silence) => silenceMatches(silence.matchers, labels))
      .map((s) => s.id);
    alert.status = { state: silencedBy.length > 0 ? "suppressed" : "active", silencedBy, inhibitedBy: [] };
    if (!query.active && alert.status.state === "active") continue;
    if (!query.silenced && silencedBy.length > 0) continue;
    shown.push(alert);
  }
  return shown.sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
}

function unionOfReceivers(a: readonly { name: string }[], b: readonly { name: string }[]) {
  const names = new Set([...a, ...b].map(({ name }) => name));
  return [...names].sort().map((name) => ({ name }));
}

/** Without grouping (issue 17), each receiver has one group holding its alerts, as a route with no group_by. */
export async function readAlertGroups(sql: Sql, clientId: string, query: AlertQuery, nowMs: number) {
  const groups = new Map<string, GettableAlert[]>();
  for (const alert of await readAlerts(sql, clientId, query, nowMs)) {
    for (const { name } of alert.receivers) groups.set(name, [...(groups.get(name) ?? []), alert]);
  }
  return [...groups].map(([name, alerts]) => ({ labels: {}, receiver: { name }, alerts }));
}

function compileReceiverRegex(pattern: string) {
  try {
    return compileLinearRegex(pattern);
  } catch (error) {
    throw new HttpError(400, "bad_request", `receiver: ${(error as Error).message}`);
  }
}

/** When the alert of `row` ends: its state's, else the end it was sent with, else resolve_timeout. */
function endsAtOf(row: NotificationRow, context: Record<string, string>): number {
  if (row.state !== null) {
    if (row.state !== "firing") return Number.NEGATIVE_INFINITY;
    return row.state_ends_at?.getTime() ?? (row.last_seen_at as Date).getTime() + resolveTimeoutMs;
  }
  const sent = context.endsAt === undefined ? undefined : parseTimestampMs(context.endsAt);
  return sent ?? row.created_at.getTime() + resolveTimeoutMs;
}

/** One notification row as Alertmanager's alert; undefined once the alert has ended (or is not one). */
function gettableAlert(row: NotificationRow, nowMs: number): GettableAlert | undefined {
  if (row.kind === "resolved") return undefined;
  const context: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(row.context)) {
    if (typeof value !== "string") continue;
    if (key.startsWith("annotation.")) annotations[key.slice("annotation.".length)] = value;
    else context[key] = value;
  }
  const endsAtMs = endsAtOf(row, context);
  const severity = (SEVERITY_NAMES as readonly string[]).indexOf(row.severity) + SEVERITY_MIN;
  if (endsAtMs <= nowMs || severity < SEVERITY_MIN) return undefined;
  const labels = alertLabels({
    severity,
    source: row.source,
    name: row.name,
    context,
  });
  // Ingest's v2 ids are am-<fingerprint>: the fingerprint of the labels as sent.
  const fingerprint = /^am-([0-9a-f]{16})$/.exec(row.alert_id)?.[1] ?? labelSetFingerprint(labels);
  return {
    labels: Object.fromEntries(labels),
    annotations,
    startsAt: row.event_time.toISOString(),
    endsAt: new Date(endsAtMs).toISOString(),
    updatedAt: row.updated_at.toISOString(),
    fingerprint,
    receivers: row.receivers.map((name) => ({ name })),
    status: { state: "active", silencedBy: [], inhibitedBy: [] },
    ...(context.generatorURL === undefined ? {} : { generatorURL: context.generatorURL }),
  };
}
