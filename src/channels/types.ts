/**
 * What every channel shares: the rows it reads (only the columns delivery needs) and the result it
 * returns, which maps one-to-one onto a deliveries row.
 */
import { assert } from "../core/assert.ts";
import type { GroupMessage } from "../core/group-payload.ts";
import type { Decision, DeliveryOutcome } from "../core/retry.ts";

export type EndpointType = "email" | "slack" | "webhook";
export type Severity = "LOW" | "MEDIUM" | "HIGH" | "CRITICAL";

export interface Endpoint {
  id: string;
  clientId: string;
  type: EndpointType;
  /** Comma-separated addresses for email, an http(s) URL otherwise. */
  value: string;
  /** HMAC signing secret, webhooks only. */
  secret: string | null;
}

export interface Notification {
  /** bigint id, kept as the decimal string postgres.js returns. */
  id: string;
  clientId: string;
  alertId: string;
  severity: Severity;
  source: string;
  name: string;
  context: Record<string, unknown>;
  ruleIds: string[];
  eventTime: Date;
  /**
   * Which notification of the alert this is: `firing`, `resolved` or `repeat:<n>` (a reminder while it
   * keeps firing); absent means firing (alerts without a lifecycle only ever fire).
   */
  kind?: string;
}

/** What a receiver is told: the alert fires (first time or reminder) or has resolved. */
export function notificationStatus(notification: Pick<Notification, "kind">): "firing" | "resolved" {
  return notification.kind === "resolved" ? "resolved" : "firing";
}

export interface DeliveryResult {
  outcome: DeliveryOutcome;
  latencyMs: number;
  httpStatus?: number;
  smtpReply?: string;
  error?: string;
  /** The receiver's requested pause; a floor for the next attempt. */
  retryAfterMs?: number;
  /** Nothing left this process (a RETRYABLE result the sender made itself): see decideStatus. */
  notSent?: boolean;
}

export interface Channel {
  readonly type: EndpointType;
  /** Never throws for delivery problems: every failure is a classified result. */
  deliver(endpoint: Endpoint, notification: Notification): Promise<DeliveryResult>;
  /** One window of a group (src/core/group-payload.ts) as one message; never throws either. */
  deliverGroup(endpoint: Endpoint, message: GroupMessage): Promise<DeliveryResult>;
}

export function toDeliveryResult(
  decision: Decision,
  latencyMs: number,
  details: { httpStatus?: number; smtpReply?: string; error?: string } = {},
): DeliveryResult {
  const result: DeliveryResult = {
    outcome: decision.outcome,
    latencyMs,
    ...details,
  };
  if (decision.outcome !== "SUCCESS") result.error = details.error ?? decision.reason;
  if (decision.retryAfterMs !== undefined) result.retryAfterMs = decision.retryAfterMs;
  return result;
}

/** Context as display lines, bounded so one noisy alert cannot produce a megabyte message. */
export function contextLines(context: Record<string, unknown>, entriesMax = 50): string[] {
  const entries = Object.entries(context);
  const lines = entries.slice(0, entriesMax).map(([key, value]) => {
    const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
    return `${key}: ${text.length > 500 ? `${text.slice(0, 500)}…` : text}`;
  });
  if (entries.length > entriesMax) lines.push(`… ${entries.length - entriesMax} more`);
  return lines;
}

/** The dispatcher hands each channel only endpoints of its type. */
export function assertEndpointType(endpoint: Endpoint, type: EndpointType): void {
  assert(endpoint.type === type, `${type} channel got a ${endpoint.type} endpoint ${endpoint.id}`);
}
