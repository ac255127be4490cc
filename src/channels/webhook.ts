/**
 * Generic webhook: POST of a JSON document to the endpoint's URL.
 *
 * Payload (stable, documented for receivers):
 *   { "notificationId": "42", "clientId": "<uuid>", "alertId": "...", "severity": "HIGH",
 *     "source": "...", "name": "...", "context": { ... }, "ruleIds": ["<uuid>"],
 *     "eventTime": "2025-01-01T00:00:00.000Z" }
 * Headers:
 *   Content-Type: application/json
 *   Idempotency-Key: <notificationId>       the same on every retry, so receivers can dedupe
 *   X-Alerting-Timestamp: <unix seconds>    only when the endpoint has a secret
 *   X-Alerting-Signature: sha256=<hex>      HMAC-SHA256(secret, timestamp + "." + raw body)
 * Receivers verify the signature over the raw body and reject stale timestamps (replays).
 *
 * A group window (rules with group_by) is one POST of Alertmanager's webhook document
 * (src/core/group-payload.ts), at most GROUP_BODY_BYTES_MAX bytes, with
 * `Idempotency-Key: group-<group key>-<incarnation>-<window>` (src/core/grouping.ts,
 * groupIdempotencyKey), the same on every retry, and the same signature headers.
 */
import {
  type GroupMessage,
  groupMessageKey,
  webhookBodyBytesMaxDefault,
  webhookGroupBody,
} from "../core/group-payload.ts";
import type { HttpTransport } from "./http.ts";
import {
  assertEndpointType,
  type Channel,
  type DeliveryResult,
  type Endpoint,
  type Notification,
  notificationStatus,
} from "./types.ts";

export class WebhookChannel implements Channel {
  readonly type = "webhook";

  constructor(
    private readonly http: HttpTransport,
    private readonly nowMs: () => number = Date.now,
    /** Alertmanager's externalURL in group payloads: where the receiver can look further. */
    private readonly externalUrl = "",
    /** A group window's body at most, so that the receiver does not refuse it for its size. */
    private readonly groupBodyBytesMax = webhookBodyBytesMaxDefault,
  ) {}

  deliver(endpoint: Endpoint, notification: Notification): Promise<DeliveryResult> {
    assertEndpointType(endpoint, "webhook");
    return this.#post(endpoint, JSON.stringify(webhookPayload(notification)), notification.id);
  }

  deliverGroup(endpoint: Endpoint, message: GroupMessage): Promise<DeliveryResult> {
    assertEndpointType(endpoint, "webhook");
    const body = webhookGroupBody(
      message,
      { receiver: endpoint.id, externalUrl: this.externalUrl, now: new Date(this.nowMs()) },
      this.groupBodyBytesMax,
    );
    return this.#post(endpoint, body, groupMessageKey(message));
  }

  #post(endpoint: Endpoint, body: string, idempotencyKey: string): Promise<DeliveryResult> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "idempotency-key": idempotencyKey,
    };
    if (endpoint.secret !== null) {
      const timestamp = String(Math.floor(this.nowMs() / 1000));
      headers["x-alerting-timestamp"] = timestamp;
      headers["x-alerting-signature"] = `sha256=${webhookSignature(endpoint.secret, timestamp, body)}`;
    }
    return this.http.post(endpoint.value, body, headers);
  }
}

export function webhookPayload(notification: Notification) {
  return {
    notificationId: notification.id,
    clientId: notification.clientId,
    alertId: notification.alertId,
    severity: notification.severity,
    source: notification.source,
    name: notification.name,
    context: notification.context,
    ruleIds: notification.ruleIds,
    eventTime: notification.eventTime.toISOString(),
    status: notificationStatus(notification),
    kind: notification.kind ?? "firing",
  };
}

/** Hex HMAC-SHA256 of `timestamp.body`; binding the timestamp stops replays of an old body. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  // Bun's native hasher: the same HMAC as node:crypto's createHmac, without its stream wrapper.
  return new Bun.CryptoHasher("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}
