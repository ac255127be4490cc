/**
 * Slack incoming webhook: a short `text` line (also what notifications and fallbacks show) plus one
 * attachment coloured by severity with the alert's fields. Same HTTP transport as webhooks, so the
 * same guard, timeout and classification (Slack answers 400/403/404/410 for bad or dead hooks,
 * 429 with Retry-After when rate limited).
 */
import {
  type GroupMessage,
  groupHeadline,
  groupSummaryLines,
  groupView,
  slackAlertsListedMax,
  slackSummaryLengthMax,
} from "../core/group-payload.ts";
import type { HttpTransport } from "./http.ts";
import {
  assertEndpointType,
  type Channel,
  contextLines,
  type DeliveryResult,
  type Endpoint,
  type Notification,
  notificationStatus,
  type Severity,
} from "./types.ts";

/** "danger" and "warning" are Slack's own red and yellow. */
export const severityColours: Record<Severity, string> = {
  CRITICAL: "danger",
  HIGH: "#ff8c00",
  MEDIUM: "warning",
  LOW: "#9e9e9e",
};

export class SlackChannel implements Channel {
  readonly type = "slack";

  constructor(private readonly http: HttpTransport) {}

  deliver(endpoint: Endpoint, notification: Notification): Promise<DeliveryResult> {
    assertEndpointType(endpoint, "slack");
    return this.#post(endpoint, slackPayload(notification));
  }

  deliverGroup(endpoint: Endpoint, message: GroupMessage): Promise<DeliveryResult> {
    assertEndpointType(endpoint, "slack");
    return this.#post(endpoint, slackGroupPayload(message));
  }

  #post(endpoint: Endpoint, payload: unknown): Promise<DeliveryResult> {
    return this.http.post(endpoint.value, JSON.stringify(payload), { "content-type": "application/json" });
  }
}

/**
 * A compact summary: the group's headline, then its first alerts, one line each, as many as Slack
 * shows whole (slackSummaryLengthMax), and the count of the rest.
 */
export function slackGroupPayload(message: GroupMessage) {
  const view = groupView(message);
  const text = escapeSlack(groupHeadline(view));
  const worst = view.alerts.reduce<Severity | undefined>((top, alert) => {
    const severity = alert.severity as Severity;
    return top === undefined || severityRank[severity] > severityRank[top] ? severity : top;
  }, undefined);
  return {
    text,
    attachments: [
      {
        color: view.status === "resolved" ? "good" : severityColours[worst ?? "LOW"],
        fallback: text,
        text: escapeSlack(
          groupSummaryLines(
            view,
            Math.min(message.alertsMax, slackAlertsListedMax),
            slackSummaryLengthMax,
            (line) => escapeSlack(line).length,
          ).join("\n"),
        ),
      },
    ],
  };
}

const severityRank: Record<Severity, number> = { LOW: 0, MEDIUM: 1, HIGH: 2, CRITICAL: 3 };

export function slackPayload(notification: Notification) {
  const { severity, source, name, alertId, context } = notification;
  const status = notificationStatus(notification).toUpperCase();
  const text = `[${status}] [${severity}] ${escapeSlack(name)} from ${escapeSlack(source)}`;
  const fields = [
    { title: "Source", value: escapeSlack(source), short: true },
    { title: "Name", value: escapeSlack(name), short: true },
    { title: "Alert ID", value: escapeSlack(alertId), short: true },
    { title: "Severity", value: severity, short: true },
    { title: "Status", value: notification.kind ?? "firing", short: true },
  ];
  const lines = contextLines(context);
  if (lines.length > 0) fields.push({ title: "Context", value: escapeSlack(lines.join("\n")), short: false });
  return {
    text,
    attachments: [
      {
        color: severityColours[severity],
        fallback: text,
        title: escapeSlack(name),
        fields,
        ts: Math.floor(notification.eventTime.getTime() / 1000),
      },
    ],
  };
}

/** Slack reads &, < and > as markup (links, mentions); alert text must not ping @channel. */
function escapeSlack(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
