/**
 * What one group message says, per channel (docs/design/alert-model.md, "Grouping"). Pure: the
 * channels send these documents, the sender decides which alerts a message carries.
 *
 * Webhook: Alertmanager's webhook document (version 4), so a receiver written for Alertmanager works
 * unchanged, plus our own fields: `clientId`, `windowNo`, `notificationIds` and `alertIds` (every
 * notification of the message and its alert id, also those past the listing cap, in the same order)
 * and, on each listed alert, `notificationId`, `alertId`, `kind`.
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
  clientId: string;
  /** The group_by labels and the values the group shares. */
  labels: Readonly<Record<string, string>>;
  /** Alerts listed at most; the rest are counted. */
  alertsMax: number;
  /** Every notification of the window routed to the endpoint, in id order. */
  alerts: readonly GroupedAlert[];
}

export type AlertStatusText = "firing" | "resolved";

export function alertStatus(alert: Pick<GroupedAlert, "kind">): AlertStatusText {
  return alert.kind === "resolved" ? "resolved" : "firing";
}

/** Firing while any alert of the message fires, like Alertmanager's group status. */
export function groupStatus(message: Pick<GroupMessage, "alerts">): AlertStatusText {
  return message.alerts.some((alert) => alertStatus(alert) === "firing") ? "firing" : "resolved";
}

export function groupMessageKey(message: Pick<GroupMessage, "groupKey" | "windowNo">): string {
  return groupIdempotencyKey(message.groupKey, message.windowNo);
}

/** The alerts a message lists and how many it only counts. */
export function listedAlerts(message: GroupMessage, listMax = message.alertsMax) {
  const count = Math.max(0, Math.min(listMax, message.alertsMax));
  return { listed: message.alerts.slice(0, count), more: Math.max(0, message.alerts.length - count) };
}

/** An alert's labels in Alertmanager's terms: alertname, severity, source and its context. */
export function alertLabels(alert: GroupedAlert): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(alert.context)) {
    labels[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  labels.alertname = alert.name;
  labels.severity = alert.severity;
  labels.source = alert.source;
  return labels;
}

/** Labels every alert of the message has with the same value. */
export function commonLabels(alerts: readonly GroupedAlert[]): Record<string, string> {
  const [first, ...rest] = alerts.map(alertLabels);
  if (first === undefined) return {};
  for (const labels of rest) {
    for (const key of Object.keys(first)) if (labels[key] !== first[key]) delete first[key];
  }
  return first;
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

export function webhookGroupPayload(message: GroupMessage, context: WebhookContext) {
  const { listed, more } = listedAlerts(message);
  return {
    version: "4",
    groupKey: message.groupKey,
    truncatedAlerts: more,
    status: groupStatus(message),
    receiver: context.receiver,
    groupLabels: message.labels,
    commonLabels: commonLabels(message.alerts),
    commonAnnotations: {},
    externalURL: context.externalUrl,
    alerts: listed.map((alert) => {
      const status = alertStatus(alert);
      return {
        status,
        labels: alertLabels(alert),
        annotations: {},
        startsAt: alert.eventTime.toISOString(),
        endsAt: status === "resolved" ? context.now.toISOString() : zeroTime,
        generatorURL: "",
        fingerprint: alert.alertId,
        notificationId: alert.id,
        alertId: alert.alertId,
        kind: alert.kind ?? "firing",
      };
    }),
    clientId: message.clientId,
    windowNo: message.windowNo,
    notificationIds: message.alerts.map((alert) => alert.id),
    alertIds: message.alerts.map((alert) => alert.alertId),
  };
}

/** `FIRING:12 source=billing-api`: the group's status, size and labels, for subjects and headlines. */
export function groupHeadline(message: GroupMessage): string {
  const labels = Object.entries(message.labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
  const headline = `[${groupStatus(message).toUpperCase()}:${message.alerts.length}] ${labels}`;
  // A line break in a header would let alert text forge headers.
  return headline.replace(/[\r\n]+/g, " ");
}

/** Slack lists fewer alerts than a webhook: a message is read, not parsed. */
export const slackAlertsListedMax = 10;

export function alertLine(alert: GroupedAlert): string {
  return `[${alertStatus(alert).toUpperCase()}] [${alert.severity}] ${alert.name} from ${alert.source} (${alert.alertId})`;
}

/** The text lines of a compact summary: headline, the first alerts, how many more. */
export function groupSummaryLines(message: GroupMessage, listMax: number): string[] {
  const { listed, more } = listedAlerts(message, listMax);
  const lines = listed.map(alertLine);
  if (more > 0) lines.push(`and ${more} more`);
  return lines;
}

/** An email's table rows: one per listed alert. */
export function groupTableRows(message: GroupMessage): string[][] {
  return listedAlerts(message).listed.map((alert) => [
    alertStatus(alert),
    alert.severity,
    alert.source,
    alert.name,
    alert.alertId,
    alert.eventTime.toISOString(),
  ]);
}

export const groupTableHeader = ["Status", "Severity", "Source", "Name", "Alert ID", "Event time"];
