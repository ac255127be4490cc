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
  created_at: Date;
  updated_at: Date;
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
  "created_at",
  "updated_at",
];

export async function findNotification(
  db: Db,
  scope: Scope,
  id: string,
): Promise<(Notification & { deliveries: Delivery[] }) | undefined> {
  const [notification] = await db<Notification[]>`
    SELECT ${db(columns)} FROM notifications WHERE id = ${id} ${scopeClause(db, scope)}`;
  if (!notification) return undefined;
  const deliveries = await db<Delivery[]>`
    SELECT id, endpoint_id, channel, attempted_at, outcome, http_status, smtp_reply, latency_ms, error
    FROM deliveries WHERE notification_id = ${id} ORDER BY id`;
  return { ...notification, deliveries };
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
