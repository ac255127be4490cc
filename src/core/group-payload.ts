/**
 * What one group message says, per channel (docs/design/alert-model.md, "Grouping"). Pure: the
 * channels send these documents, the sender decides which rows a message carries.
 *
 * A window's rows may hold several notifications of one alert (its firing and its resolution within
 * one group_interval): every channel lists each alert once, in its latest state (`groupView`), and
 * counts alerts so. Every message is bounded, so that no receiver refuses a window for its size: the
 * alerts that do not fit are counted, like those past `group_alerts_max`, never dropped silently.
 *
 * Webhook: Alertmanager's webhook document (version 4), so a receiver written for Alertmanager works
 * unchanged, plus our own fields: `clientId`, `windowNo`, `notificationIds` and `alertIds` (the
 * window's notifications and their alert ids, in the same order, as many as fit),
 * `truncatedNotifications` (how many of them the two lists leave out) and, on each listed alert,
 * `notificationId`, `alertId`, `kind`. `alerts.length + truncatedAlerts` is the window's alert count,
 * `notificationIds.length + truncatedNotifications` its notification count.
 */
import { groupIdempotencyKey } from "./grouping.ts";

/** One notification of a group, as the sender read it (channels' Notification is one). */
export interface GroupedAlert {
  id: string;
  alertId: string;
  severity: string;
  source: string;
  name: string;
  context: Readonly<Record<string, unknown>>;
  eventTime: Date;
  /** `firing`, `resolved` or `repeat:<n>`; absent means firing. */
  kind?: string;
}

/** One window of one group, as one endpoint receives it. */
export interface GroupMessage {
  groupKey: string;
  windowNo: number;
  /** The group's incarnation (notification_groups.incarnation); null for a group older than migration 000022. */
  incarnation: number | null;
  clientId: string;
  /** The group_by labels and the values the group shares. */
  labels: Readonly<Record<string, string>>;
  /** Alerts listed at most; the rest are counted. */
  alertsMax: number;
  /** Every notification of the window routed to the endpoint, in id order. */
  alerts: readonly GroupedAlert[];
}

export type AlertStatusText = "firing" | "resolved";

/** A window as every channel shows it: each alert once, in its latest state, and their status. */
export interface GroupView {
  message: GroupMessage;
  alerts: readonly GroupedAlert[];
  status: AlertStatusText;
}

export function alertStatus(alert: Pick<GroupedAlert, "kind">): AlertStatusText {
  return alert.kind === "resolved" ? "resolved" : "firing";
}

/**
 * Each alert of a window once, as Alertmanager lists it: its latest row. The aggregator writes an
 * alert's rows under its lifecycle lock, one transaction after the other and in submission order
 * within one, so their id order is their order: a resolution wins over its episode's firing, a new
 * episode's firing over the resolution before it. An alert keeps the place of its first row.
 */
export function latestPerAlert(rows: readonly GroupedAlert[]): GroupedAlert[] {
  const latest = new Map<string, GroupedAlert>();
  for (const row of rows) latest.set(row.alertId, row);
  return [...latest.values()];
}

/** Firing while any alert fires, like Alertmanager's group status. */
export function groupStatus(alerts: readonly Pick<GroupedAlert, "kind">[]): AlertStatusText {
  return alerts.some((alert) => alertStatus(alert) === "firing") ? "firing" : "resolved";
}

export function groupView(message: GroupMessage): GroupView {
  const alerts = latestPerAlert(message.alerts);
  return { message, alerts, status: groupStatus(alerts) };
}

export function groupMessageKey(
  message: Pick<GroupMessage, "groupKey" | "windowNo" | "incarnation">,
): string {
  return groupIdempotencyKey(message.groupKey, message.windowNo, message.incarnation);
}

export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * How many leading items fit in `budget` (bytes or characters, whichever `size` counts): the listing
 * stops at the first item that does not fit, so what is listed is a prefix in order and an item
 * larger than the budget is counted, not listed. At most `count` calls of `size`.
 */
export function fitPrefix(
  count: number,
  budget: number,
  size: (index: number) => number,
): { count: number; used: number } {
  let used = 0;
  for (let i = 0; i < count; i++) {
    const next = used + size(i);
    if (next > budget) return { count: i, used };
    used = next;
  }
  return { count, used };
}

/**
 * The alerts a summary lists: at most `listMax`, as many as fit in `budget` at `size` each, with room
 * for the line counting the rest (`moreSize`, reserved at the most digits it can take) whenever some
 * are left out.
 */
export function summaryListing<T>(
  alerts: readonly T[],
  listMax: number,
  budget: number,
  size: (alert: T) => number,
  moreSize: (more: number) => number,
): { listed: T[]; more: number } {
  const sizes: number[] = [];
  const sizeAt = (i: number) => {
    sizes[i] ??= size(alerts[i] as T);
    return sizes[i];
  };
  const candidates = Math.max(0, Math.min(listMax, alerts.length));
  const all = fitPrefix(candidates, budget, sizeAt);
  if (all.count === alerts.length) return { listed: [...alerts], more: 0 };
  const { count } = fitPrefix(all.count, budget - moreSize(alerts.length), sizeAt);
  return { listed: alerts.slice(0, count), more: alerts.length - count };
}

/** An alert's labels in Alertmanager's terms: alertname, severity, source and its context. */
export function alertLabels(alert: GroupedAlert): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(alert.context)) labels[key] = contextText(value);
  labels.alertname = alert.name;
  labels.severity = alert.severity;
  labels.source = alert.source;
  return labels;
}

function contextText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** One label of `alertLabels(alert)`, without building them all. */
function alertLabel(alert: GroupedAlert, key: string): string | undefined {
  if (key === "alertname") return alert.name;
  if (key === "severity") return alert.severity;
  if (key === "source") return alert.source;
  return Object.hasOwn(alert.context, key) ? contextText(alert.context[key]) : undefined;
}

/** Labels every alert of the message has with the same value. */
export function commonLabels(alerts: readonly GroupedAlert[]): Record<string, string> {
  const [first, ...rest] = alerts;
  if (first === undefined) return {};
  const common = alertLabels(first);
  // Only the keys still common are looked up: a window of thousands of alerts with large contexts
  // costs one lookup per alert once their labels differ.
  let keys = Object.keys(common);
  for (const alert of rest) {
    if (keys.length === 0) break;
    keys = keys.filter((key) => {
      if (alertLabel(alert, key) === common[key]) return true;
      delete common[key];
      return false;
    });
  }
  return common;
}

/** Alertmanager's zero time: a firing alert's endsAt. */
const zeroTime = "0001-01-01T00:00:00Z";

export interface WebhookContext {
  /** Alertmanager's receiver name: ours is the endpoint id. */
  receiver: string;
  externalUrl: string;
  /** When a resolved alert is told about: its endsAt. */
  now: Date;
}

/**
 * The least GROUP_BODY_BYTES_MAX: room for the document's fixed fields at their longest (an
 * EXTERNAL_URL of `externalUrlLengthMax` characters, each escaped to 6 bytes, and about 400 bytes of
 * names, ids and counts).
 */
export const webhookBodyBytesMin = 8192;
export const externalUrlLengthMax = 1024;
/** Under the 1 MiB that nginx and most body parsers accept by default; Express's is 100 KiB. */
export const webhookBodyBytesMaxDefault = 256 * 1024;

function webhookAlert(alert: GroupedAlert, now: Date) {
  const status = alertStatus(alert);
  return {
    status,
    labels: alertLabels(alert),
    annotations: {},
    startsAt: alert.eventTime.toISOString(),
    endsAt: status === "resolved" ? now.toISOString() : zeroTime,
    generatorURL: "",
    fingerprint: alert.alertId,
    notificationId: alert.id,
    alertId: alert.alertId,
    kind: alert.kind ?? "firing",
  };
}

/** The entries of `labels` that fit in `budget` bytes, in order; one too large is left out, the rest still tried. */
function fitLabels(labels: Readonly<Record<string, string>>, budget: number) {
  const kept: Record<string, string> = {};
  let used = 0;
  for (const [key, value] of Object.entries(labels)) {
    // `"key":"value",`: a comma counted for every entry is one byte to spare.
    const size = utf8Bytes(JSON.stringify(key)) + utf8Bytes(JSON.stringify(value)) + 2;
    if (used + size > budget) continue;
    kept[key] = value;
    used += size;
  }
  return { labels: kept, used };
}

/**
 * The webhook body of a window, at most `bytesMax` bytes of UTF-8 (given at least
 * `webhookBodyBytesMin` and an externalUrl of at most `externalUrlLengthMax` characters): first the
 * fixed fields, then the group labels and the common labels (an entry that does not fit is left
 * out), then the listed alerts and the notification ids. Neither of the last two crowds out the
 * other: the alerts are fitted into half the room left, the ids into what the alerts left, then the
 * alerts into what the ids left. What does not fit is counted in `truncatedAlerts` and
 * `truncatedNotifications`.
 */
export function webhookGroupBody(message: GroupMessage, context: WebhookContext, bytesMax: number): string {
  const { alerts, status } = groupView(message);
  const rows = message.alerts;
  const document = (parts: {
    groupLabels: Record<string, string>;
    commonLabels: Record<string, string>;
    listed: readonly object[];
    truncatedAlerts: number;
    ids: number;
  }) => ({
    version: "4",
    groupKey: message.groupKey,
    truncatedAlerts: parts.truncatedAlerts,
    status,
    receiver: context.receiver,
    groupLabels: parts.groupLabels,
    commonLabels: parts.commonLabels,
    commonAnnotations: {},
    externalURL: context.externalUrl,
    alerts: parts.listed,
    clientId: message.clientId,
    windowNo: message.windowNo,
    truncatedNotifications: rows.length - parts.ids,
    notificationIds: rows.slice(0, parts.ids).map((row) => row.id),
    // Last: the pipeline bench's sink reads the ids from the end of the body.
    alertIds: rows.slice(0, parts.ids).map((row) => row.alertId),
  });
  // The counts at their largest: the counts sent are never longer.
  const empty = { groupLabels: {}, commonLabels: {}, listed: [], truncatedAlerts: alerts.length, ids: 0 };
  let room = bytesMax - utf8Bytes(JSON.stringify(document(empty)));
  const group = fitLabels(message.labels, room);
  room -= group.used;
  const common = fitLabels(commonLabels(alerts), room);
  room -= common.used;

  const entries: object[] = [];
  const entrySizes: number[] = [];
  const entrySize = (i: number) => {
    if (entrySizes[i] === undefined) {
      entries[i] = webhookAlert(alerts[i] as GroupedAlert, context.now);
      entrySizes[i] = utf8Bytes(JSON.stringify(entries[i])) + 1;
    }
    return entrySizes[i];
  };
  const idSize = (i: number) => {
    const row = rows[i] as GroupedAlert;
    return utf8Bytes(JSON.stringify(row.id)) + utf8Bytes(JSON.stringify(row.alertId)) + 2;
  };
  const candidates = Math.max(0, Math.min(message.alertsMax, alerts.length));
  const firstShare = fitPrefix(candidates, Math.floor(room / 2), entrySize);
  const ids = fitPrefix(rows.length, room - firstShare.used, idSize);
  const listed = fitPrefix(candidates, room - ids.used, entrySize);
  return JSON.stringify(
    document({
      groupLabels: group.labels,
      commonLabels: common.labels,
      listed: entries.slice(0, listed.count),
      truncatedAlerts: alerts.length - listed.count,
      ids: ids.count,
    }),
  );
}

/** Headlines are cut to this many characters: Slack splits longer texts, mail relays drop long headers. */
export const headlineLengthMax = 1000;

/** `[FIRING:12] source=billing-api`: the group's status, alert count and labels, for subjects and headlines. */
export function groupHeadline(view: GroupView): string {
  const labels = Object.entries(view.message.labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
  // A line break in a header would let alert text forge headers.
  const headline = `[${view.status.toUpperCase()}:${view.alerts.length}] ${labels}`.replace(/[\r\n]+/g, " ");
  if (headline.length <= headlineLengthMax) return headline;
  let end = headlineLengthMax - 1;
  // Not between the two halves of a surrogate pair.
  if (/[\uD800-\uDBFF]/.test(headline.charAt(end - 1))) end--;
  return `${headline.slice(0, end)}…`;
}

/** Slack lists fewer alerts than a webhook: a message is read, not parsed. */
export const slackAlertsListedMax = 10;
/**
 * The summary's characters at most, once escaped: Slack asks for messages of at most 4,000, folds an
 * attachment's text past 700 behind "Show more" and cuts it at 8,000.
 */
export const slackSummaryLengthMax = 4000;

export function alertLine(alert: GroupedAlert): string {
  return `[${alertStatus(alert).toUpperCase()}] [${alert.severity}] ${alert.name} from ${alert.source} (${alert.alertId})`;
}

/**
 * The text lines of a compact summary: the first alerts (at most `listMax`), one line each, as many as
 * fit in `lengthMax` as `lineLength` counts a line once the channel escaped it, then how many more.
 */
export function groupSummaryLines(
  view: GroupView,
  listMax: number,
  lengthMax: number,
  lineLength: (line: string) => number,
): string[] {
  const moreLine = (more: number) => `and ${more} more`;
  const { listed, more } = summaryListing(
    view.alerts,
    listMax,
    lengthMax,
    (alert) => lineLength(alertLine(alert)) + 1,
    (count) => lineLength(moreLine(count)) + 1,
  );
  const lines = listed.map(alertLine);
  if (more > 0) lines.push(moreLine(more));
  return lines;
}

/**
 * An email's body (text and HTML together) at most: under the 102 KB of HTML past which Gmail clips
 * a message (hiding the count of the rest), far under mail relays' size limits (Postfix: 10 MB).
 */
export const emailBodyBytesMax = 96 * 1024;

/** An email's table row of one alert. */
export function groupTableRow(alert: GroupedAlert): string[] {
  return [
    alertStatus(alert),
    alert.severity,
    alert.source,
    alert.name,
    alert.alertId,
    alert.eventTime.toISOString(),
  ];
}

export const groupTableHeader = ["Status", "Severity", "Source", "Name", "Alert ID", "Event time"];
