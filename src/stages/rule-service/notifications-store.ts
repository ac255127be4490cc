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
  /** "" unless the client's matched rules group in different ways: then one row per route. */
  route: string;
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
  /** `carried`: the endpoint is one this notification's own rules route to (by type and address). */
  deliveries: (Delivery & { alerts: number; carried: boolean })[];
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

// lease_until is the senders' internal bookkeeping, not part of the API. status and group_send_id
// are selected apart (shown), the rest as stored.
const storedColumns = [
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
  "attempts",
  "next_attempt_at",
  "last_error",
  "silenced_by",
  "muted_by_rule",
  "episode",
  "kind",
  "route",
  "group_key",
  "created_at",
  "updated_at",
].map((column) => `n.${column}`);

/**
 * `notifications n` with the status it shows. A grouped row is written when its group send records an
 * outcome (src/adapters/group-store.ts): until then a row of a window in flight is stored RECEIVED
 * without its send, and shown as its send's, SENDING (the send in flight, `f`, found through
 * group_sends_in_flight and its member_ids).
 */
export const notificationsShown = (db: Db) => db`notifications n LEFT JOIN LATERAL (
    SELECT s.id FROM group_sends s
    WHERE n.group_key IS NOT NULL AND n.group_send_id IS NULL AND n.status = 'RECEIVED'
      AND s.group_key = n.group_key AND s.status = 'SENDING' AND n.id = ANY(s.member_ids)
    LIMIT 1) f ON true`;

/** The status a row of notificationsShown shows. */
export const shownStatus = (db: Db) => db`CASE WHEN f.id IS NULL THEN n.status ELSE 'SENDING' END`;

const shown = (db: Db) => db`
  ${db(storedColumns)}, ${shownStatus(db)} AS status, coalesce(n.group_send_id, f.id) AS group_send_id
  FROM ${notificationsShown(db)}`;

/** Rows shown with `status`; a stored RECEIVED row may be shown SENDING (above). */
function statusClause(db: Db, status: NotificationStatus | undefined) {
  if (status === undefined) return db``;
  if (status === "RECEIVED") return db`AND n.status = 'RECEIVED' AND f.id IS NULL`;
  if (status === "SENDING")
    return db`AND n.status IN ('SENDING', 'RECEIVED') AND (n.status = 'SENDING' OR f.id IS NOT NULL)`;
  return db`AND n.status = ${status}`;
}

export async function findNotification(
  db: Db,
  scope: Scope,
  id: string,
): Promise<(Notification & { deliveries: Delivery[]; group_send: GroupSend | null }) | undefined> {
  const [notification] = await db<Notification[]>`
    SELECT ${shown(db)} WHERE n.id = ${id} ${scopeClause(db, scope, "n.client_id")}`;
  if (!notification) return undefined;
  const deliveries = await db<Delivery[]>`
    SELECT id, endpoint_id, channel, attempted_at, outcome, http_status, smtp_reply, latency_ms, error
    FROM deliveries WHERE notification_id = ${id} ORDER BY id`;
  return { ...notification, deliveries, group_send: await findGroupSend(db, notification.group_send_id, id) };
}

/**
 * The group message `notificationId` went out in, with every attempt of the message: one window
 * spans the group's rules, and each endpoint got only its own rules' alerts (`carried`).
 */
async function findGroupSend(
  db: Db,
  sendId: string | null,
  notificationId: string,
): Promise<GroupSend | null> {
  if (sendId === null) return null;
  const [row] = await db<
    (Omit<GroupSend, "idempotency_key" | "deliveries"> & { incarnation: number | null })[]
  >`
    SELECT s.id::text, s.group_key, s.window_no, g.incarnation::float8 AS incarnation, g.labels, s.alerts, s.status, s.attempts, s.created_at
    FROM group_sends s JOIN notification_groups g ON g.group_key = s.group_key WHERE s.id = ${sendId}`;
  if (!row) return null;
  const { incarnation, ...send } = row;
  const deliveries = await db<GroupSend["deliveries"]>`
    SELECT d.id::text, d.endpoint_id, d.channel, d.alerts, d.attempted_at, d.outcome, d.http_status, d.smtp_reply,
           d.latency_ms, d.error,
           EXISTS (SELECT 1 FROM notifications n
                   JOIN endpoints own ON own.client_id = n.client_id AND own.rule_id = ANY(n.rule_ids)
                   JOIN endpoints carrier ON carrier.type = own.type AND carrier.value = own.value
                   WHERE n.id = ${notificationId} AND carrier.id = d.endpoint_id) AS carried
    FROM group_deliveries d WHERE d.group_send_id = ${sendId} ORDER BY d.id`;
  return {
    ...send,
    idempotency_key: groupIdempotencyKey(send.group_key, send.window_no, incarnation),
    deliveries,
  };
}

export async function listNotifications(
  db: Db,
  scope: Scope,
  filter: { clientId?: string; status?: NotificationStatus },
  afterId: string | null,
  limit: number,
): Promise<Notification[]> {
  return db<Notification[]>`
    SELECT ${shown(db)} WHERE true
      ${scopeClause(db, scope, "n.client_id")}
      ${filter.clientId === undefined ? db`` : db`AND n.client_id = ${filter.clientId}`}
      ${statusClause(db, filter.status)}
      ${afterClause(db, afterId, "n.id")}
    ORDER BY n.id LIMIT ${limit + 1}`;
}
