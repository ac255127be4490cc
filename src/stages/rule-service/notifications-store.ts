import { groupIdempotencyKey } from "../../core/grouping.ts";
import { afterClause, type Db, type Scope, scopeClause } from "./store.ts";

export const notificationStatuses = ["RECEIVED", "SENDING", "RETRY", "SENT", "FAILED", "SILENCED"] as const;
export type NotificationStatus = (typeof notificationStatuses)[number];

export interface Notification {
  /** bigint, as a string. */
  id: string;
  client_id: string;
  /** The scope the alert came in under: `client:<id>`, `shared:<name>`, or "" from internal producers. */
  scope: string;
  alert_id: string;
  severity: string;
  source: string;
  name: string;
  context: unknown;
  rule_ids: string[];
  event_time: Date;
  status: NotificationStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_error: string | null;
  silenced_by: string | null;
  muted_by_rule: string | null;
  /** Alertmanager alerts: the firing period, and firing, resolved or repeat:<n>; v1 alerts: 0, firing. */
  episode: number;
  kind: string;
  /** Grouped rows: the group (src/core/grouping.ts) and the group send that carried it, once sent. */
  group_key: string | null;
  group_send_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The group message (one window of the group) a grouped notification went out in. */
export interface GroupSend {
  id: string;
  group_key: string;
  window_no: number;
  /** What every endpoint received as Idempotency-Key for this window (src/core/grouping.ts). */
  idempotency_key: string;
  labels: Record<string, string>;
  alerts: number;
  status: string;
  attempts: number;
  created_at: Date;
  deliveries: (Delivery & { alerts: number })[];
}

export interface Delivery {
  id: string;
  endpoint_id: string;
  channel: string;
  attempted_at: Date;
  outcome: "SUCCESS" | "RETRYABLE" | "PERMANENT";
  http_status: number | null;
  smtp_reply: string | null;
  latency_ms: number;
  error: string | null;
}

// lease_until is the senders' internal bookkeeping, not part of the API.
const columns = [
  "id",
  "client_id",
  "scope",
  "alert_id",
  "severity",
  "source",
  "name",
  "context",
  "rule_ids",
  "event_time",
  "status",
  "attempts",
  "next_attempt_at",
  "last_error",
  "silenced_by",
  "muted_by_rule",
  "episode",
  "kind",
  "group_key",
  "group_send_id",
  "created_at",
  "updated_at",
];

export async function findNotification(
  db: Db,
  scope: Scope,
  id: string,
): Promise<(Notification & { deliveries: Delivery[]; group_send: GroupSend | null }) | undefined> {
  const [notification] = await db<Notification[]>`
    SELECT ${db(columns)} FROM notifications WHERE id = ${id} ${scopeClause(db, scope)}`;
  if (!notification) return undefined;
  const deliveries = await db<Delivery[]>`
    SELECT id, endpoint_id, channel, attempted_at, outcome, http_status, smtp_reply, latency_ms, error
    FROM deliveries WHERE notification_id = ${id} ORDER BY id`;
  return { ...notification, deliveries, group_send: await findGroupSend(db, notification.group_send_id) };
}

async function findGroupSend(db: Db, sendId: string | null): Promise<GroupSend | null> {
  if (sendId === null) return null;
  const [send] = await db<Omit<GroupSend, "idempotency_key" | "deliveries">[]>`
    SELECT s.id::text, s.group_key, s.window_no, g.labels, s.alerts, s.status, s.attempts, s.created_at
    FROM group_sends s JOIN notification_groups g ON g.group_key = s.group_key WHERE s.id = ${sendId}`;
  if (!send) return null;
  const deliveries = await db<GroupSend["deliveries"]>`
    SELECT id::text, endpoint_id, channel, alerts, attempted_at, outcome, http_status, smtp_reply, latency_ms, error
    FROM group_deliveries WHERE group_send_id = ${sendId} ORDER BY id`;
  return { ...send, idempotency_key: groupIdempotencyKey(send.group_key, send.window_no), deliveries };
}

export async function listNotifications(
  db: Db,
  scope: Scope,
  filter: { clientId?: string; status?: NotificationStatus },
  afterId: string | null,
  limit: number,
): Promise<Notification[]> {
  return db<Notification[]>`
    SELECT ${db(columns)} FROM notifications WHERE true
      ${scopeClause(db, scope)}
      ${filter.clientId === undefined ? db`` : db`AND client_id = ${filter.clientId}`}
      ${filter.status === undefined ? db`` : db`AND status = ${filter.status}`}
      ${afterClause(db, afterId)}
    ORDER BY id LIMIT ${limit + 1}`;
}
