/**
 * The sender's view of groups (docs/design/alert-model.md, "Grouping"): open a due group's next
 * window as a group send over its waiting rows, re-drive group sends whose retry came due or whose
 * lease expired, find each send's endpoints, and record an attempt. A group send carries the lease,
 * attempts and retry schedule of its rows; their statuses follow its status in the same statement.
 *
 * A send's rows are fixed when it is opened (notifications.group_send_id), and its window number with
 * them, so a repeat after a crash or a retry sends the same alerts under the same Idempotency-Key.
 */
import type { Endpoint, Notification } from "../channels/types.ts";
import type { StatusDecision } from "../core/delivery-status.ts";
import { prepared, type Sql } from "./postgres.ts";

export interface ClaimedGroupSend {
  id: string;
  clientId: string;
  groupKey: string;
  windowNo: number;
  labels: Record<string, string>;
  alertsMax: number;
  /** Attempts including this claim; fences the status update against a later claimer. */
  attempts: number;
  /** Its rows still to deliver, in id order. */
  members: Notification[];
}

/** One endpoint of a send and the rows whose rules route to it. */
export interface GroupEndpointWork {
  endpoint: Endpoint;
  memberIds: Set<string>;
}

export interface SendWork {
  pending: GroupEndpointWork[];
  deliveredEarlier: number;
  permanentEarlier: number;
}

export interface GroupAttemptRecord {
  groupSendId: string;
  endpointId: string;
  channel: string;
  alerts: number;
  outcome: string;
  httpStatus: number | null;
  smtpReply: string | null;
  latencyMs: number;
  error: string | null;
}

export interface GroupStatusUpdate {
  groupSendId: string;
  attempts: number;
  decision: StatusDecision;
}

interface MemberRow {
  send_id: string;
  id: string | null;
  client_id: string;
  alert_id: string;
  severity: Notification["severity"];
  source: string;
  name: string;
  context: Record<string, unknown>;
  rule_ids: string[];
  event_time: Date;
  kind: string;
}

const memberColumns =
  "n.id, n.alert_id, n.severity, n.source, n.name, n.context, array_to_json(n.rule_ids) AS rule_ids, n.event_time, n.kind";

function toMember(row: MemberRow, clientId: string): Notification {
  return {
    id: String(row.id),
    clientId,
    alertId: row.alert_id,
    severity: row.severity,
    source: row.source,
    name: row.name,
    context: row.context,
    ruleIds: row.rule_ids,
    eventTime: row.event_time,
    kind: row.kind,
  };
}

interface EndpointRow {
  id: string;
  client_id: string;
  rule_id: string;
  type: Endpoint["type"];
  value: string;
  secret: string | null;
}

const byId = (a: Notification, b: Notification) => Number(a.id) - Number(b.id);

/** See deliveryStoreSettings: every statement here reaches rows through an index. */
const leaseInterval = "make_interval(secs => $2::float8 / 1000)";

export class GroupStore {
  constructor(
    private readonly sql: Sql,
    private readonly leaseMs: number,
    /** Rows one window takes at most; the rest wait for the group's next window. */
    private readonly rowsPerSendMax: number,
  ) {}

  /** Re-driven sends first (they are older), then new windows of due groups; at most `limit` of each. */
  async claimDue(limit: number): Promise<ClaimedGroupSend[]> {
    const redriven = await this.redriveDue(limit);
    const opened = await this.openDue(limit);
    return [...redriven, ...opened];
  }

  /**
   * Opens the next window of up to `limit` due groups with waiting rows. The group rows are locked by
   * a statement of their own, so the next statement's snapshot sees every row committed before the
   * lock (openGroups in notification-store.ts marks the group after writing the rows, in their
   * transaction): a row is either taken now or its group is marked waiting again after this window.
   * The lock waits (briefly: an aggregator holds a group from its mark to its commit) rather than
   * skipping, since under a steady stream a group would nearly always be held; in key order, as the
   * aggregator and the sweep take them, and re-checked once held, so a group another sender just
   * opened is left alone.
   */
  async openDue(limit: number): Promise<ClaimedGroupSend[]> {
    return this.sql.begin(async (tx) => {
      const groups = await tx.unsafe<
        {
          group_key: string;
          client_id: string;
          labels: Record<string, string>;
          group_alerts_max: number;
          next_window: number;
        }[]
      >(
        `SELECT group_key, client_id, labels, group_alerts_max, next_window FROM notification_groups
         WHERE group_key IN (SELECT group_key FROM notification_groups
                             WHERE has_pending AND next_due_at <= now() ORDER BY next_due_at LIMIT $1)
           AND has_pending AND next_due_at <= now()
         ORDER BY group_key FOR UPDATE`,
        [limit] as never[],
        prepared,
      );
      if (groups.length === 0) return [];
      const rows = await tx.unsafe<(MemberRow & { group_key: string })[]>(
        `WITH picked AS (
           SELECT g.key, w.id, w.rn FROM unnest($1::text[]) AS g(key) CROSS JOIN LATERAL (
             SELECT id, row_number() OVER (ORDER BY id) AS rn FROM notifications
             WHERE group_key = g.key AND group_send_id IS NULL AND status = 'RECEIVED'
             ORDER BY id LIMIT $3::int + 1) w
         ), counts AS (
           SELECT key, count(*) FILTER (WHERE rn <= $3) AS taking, bool_or(rn > $3) AS more FROM picked GROUP BY key
         ), sends AS (
           INSERT INTO group_sends (client_id, group_key, window_no, alerts, lease_until, next_attempt_at)
           SELECT g.client_id, g.group_key, g.next_window, c.taking, now() + ${leaseInterval}, now() + ${leaseInterval}
           FROM counts c JOIN notification_groups g ON g.group_key = c.key
           RETURNING id, group_key
         ), members AS (
           UPDATE notifications n
           SET group_send_id = s.id, status = 'SENDING', attempts = n.attempts + 1, updated_at = now(),
               lease_until = now() + ${leaseInterval}, next_attempt_at = NULL
           FROM picked p JOIN sends s ON s.group_key = p.key
           WHERE n.id = p.id AND p.rn <= $3
           RETURNING s.id AS send_id, n.group_key, ${memberColumns}
         ), scheduled AS (
           UPDATE notification_groups g
           SET next_window = g.next_window + CASE WHEN c.key IS NULL THEN 0 ELSE 1 END,
               next_due_at = CASE WHEN c.key IS NULL THEN g.next_due_at
                                  ELSE now() + make_interval(secs => g.group_interval_ms / 1000.0) END,
               has_pending = coalesce(c.more, false)
           FROM unnest($1::text[]) AS l(key) LEFT JOIN counts c ON c.key = l.key
           WHERE g.group_key = l.key
         )
         SELECT * FROM members`,
        [groups.map((g) => g.group_key), this.leaseMs, this.rowsPerSendMax] as never[],
      );
      const sends = new Map<string, ClaimedGroupSend>();
      const groupByKey = new Map(groups.map((g) => [g.group_key, g]));
      for (const row of rows) {
        const sendId = String(row.send_id);
        let send = sends.get(sendId);
        if (send === undefined) {
          const group = groupByKey.get(row.group_key) as (typeof groups)[number];
          send = {
            id: sendId,
            clientId: group.client_id,
            groupKey: group.group_key,
            windowNo: group.next_window,
            labels: group.labels,
            alertsMax: group.group_alerts_max,
            attempts: 1,
            members: [],
          };
          sends.set(sendId, send);
        }
        send.members.push(toMember(row, send.clientId));
      }
      for (const send of sends.values()) send.members.sort(byId);
      return [...sends.values()];
    });
  }

  /**
   * Claims up to `limit` sends whose retry came due or whose lease expired (a crashed sender), with
   * their rows, skipping sends another sender holds.
   */
  async redriveDue(limit: number): Promise<ClaimedGroupSend[]> {
    const rows = await this.sql.unsafe<
      (MemberRow & {
        client_id: string;
        group_key: string;
        window_no: number;
        send_attempts: number;
        labels: Record<string, string>;
        group_alerts_max: number;
      })[]
    >(
      `WITH due AS (
         SELECT id FROM group_sends WHERE status IN ('SENDING', 'RETRY') AND next_attempt_at <= now()
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       ), sends AS (
         UPDATE group_sends s
         SET status = 'SENDING', attempts = s.attempts + 1, updated_at = now(),
             lease_until = now() + ${leaseInterval}, next_attempt_at = now() + ${leaseInterval}
         FROM due WHERE s.id = due.id
         RETURNING s.id, s.client_id, s.group_key, s.window_no, s.attempts
       ), members AS (
         UPDATE notifications n
         SET status = 'SENDING', attempts = n.attempts + 1, updated_at = now(), lease_until = now() + ${leaseInterval}
         FROM sends s
         WHERE n.group_send_id = s.id AND CASE n.status WHEN 'SENDING' THEN true WHEN 'RETRY' THEN true ELSE false END
         RETURNING n.group_send_id, ${memberColumns}
       )
       SELECT s.id AS send_id, s.client_id, s.group_key, s.window_no, s.attempts AS send_attempts,
              g.labels, g.group_alerts_max, m.id, m.alert_id, m.severity, m.source, m.name, m.context,
              m.rule_ids, m.event_time, m.kind
       FROM sends s JOIN notification_groups g ON g.group_key = s.group_key
       LEFT JOIN members m ON m.group_send_id = s.id`,
      [limit, this.leaseMs] as never[],
      prepared,
    );
    const sends = new Map<string, ClaimedGroupSend>();
    for (const row of rows) {
      const sendId = String(row.send_id);
      let send = sends.get(sendId);
      if (send === undefined) {
        send = {
          id: sendId,
          clientId: row.client_id,
          groupKey: row.group_key,
          windowNo: row.window_no,
          labels: row.labels,
          alertsMax: row.group_alerts_max,
          attempts: row.send_attempts,
          members: [],
        };
        sends.set(sendId, send);
      }
      if (row.id !== null) send.members.push(toMember(row, send.clientId));
    }
    for (const send of sends.values()) send.members.sort(byId);
    return [...sends.values()];
  }

  /**
   * Per send, the enabled endpoints its rows' rules name, deduplicated by (type, value) (the lowest
   * endpoint id stands for them), each with the rows routed to it; minus endpoints already delivered
   * or refused for good in an earlier attempt of the send. The rows' rule ids are in hand, so one
   * lookup of the rules' endpoints serves every row (a send of thousands has a few rule sets).
   */
  async endpointWork(sends: readonly ClaimedGroupSend[]): Promise<Map<string, SendWork>> {
    const work = new Map<string, SendWork>();
    if (sends.length === 0) return work;
    const ruleIds = new Set(sends.flatMap((s) => s.members.flatMap((m) => m.ruleIds)));
    const endpoints = await this.sql.unsafe<EndpointRow[]>(
      `SELECT id, client_id, rule_id, type, value, secret FROM endpoints
       WHERE rule_id = ANY($1::uuid[]) AND enabled ORDER BY id`,
      [`{${[...ruleIds].join(",")}}`] as never[],
      prepared,
    );
    const byRule = new Map<string, EndpointRow[]>();
    for (const endpoint of endpoints) {
      const list = byRule.get(endpoint.rule_id) ?? [];
      list.push(endpoint);
      byRule.set(endpoint.rule_id, list);
    }
    const retried = sends.filter((s) => s.attempts > 1).map((s) => s.id);
    const finals =
      retried.length === 0
        ? []
        : await this.sql.unsafe<{ send_id: string; endpoint_id: string; outcome: string }[]>(
            `SELECT DISTINCT group_send_id AS send_id, endpoint_id, outcome FROM group_deliveries
             WHERE group_send_id = ANY($1::bigint[]) AND outcome IN ('SUCCESS', 'PERMANENT')`,
            [`{${retried.join(",")}}`] as never[],
            prepared,
          );
    const finalOutcome = new Map(finals.map((f) => [`${f.send_id}/${f.endpoint_id}`, f.outcome]));
    for (const send of sends) {
      // Endpoints in id order per rule, so the first of a (type, value) is the lowest id.
      const byAddress = new Map<string, GroupEndpointWork>();
      for (const member of send.members) {
        for (const ruleId of member.ruleIds) {
          for (const row of byRule.get(ruleId) ?? []) {
            if (row.client_id !== send.clientId) continue;
            const address = `${row.type}\u0000${row.value}`;
            let entry = byAddress.get(address);
            if (entry === undefined || row.id < entry.endpoint.id) {
              entry = {
                endpoint: {
                  id: row.id,
                  clientId: send.clientId,
                  type: row.type,
                  value: row.value,
                  secret: row.secret,
                },
                memberIds: entry?.memberIds ?? new Set(),
              };
              byAddress.set(address, entry);
            }
            entry.memberIds.add(member.id);
          }
        }
      }
      const entry: SendWork = { pending: [], deliveredEarlier: 0, permanentEarlier: 0 };
      for (const endpointWork of byAddress.values()) {
        const outcome = finalOutcome.get(`${send.id}/${endpointWork.endpoint.id}`);
        if (outcome === "SUCCESS") entry.deliveredEarlier++;
        else if (outcome === "PERMANENT") entry.permanentEarlier++;
        else entry.pending.push(endpointWork);
      }
      work.set(send.id, entry);
    }
    return work;
  }

  /**
   * Records every endpoint attempt of the sends and applies their statuses to the sends and their
   * rows in one statement, only while a send is still ours (SENDING with the attempts we claimed).
   */
  async recordAttempt(
    attempts: readonly GroupAttemptRecord[],
    updates: readonly GroupStatusUpdate[],
  ): Promise<void> {
    await this.sql.unsafe(
      `WITH recorded AS (
         INSERT INTO group_deliveries (group_send_id, endpoint_id, channel, alerts, outcome, http_status, smtp_reply, latency_ms, error)
         SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::int[], $7::text[], $8::int[], $9::text[])
       ), sends AS (
         UPDATE group_sends s
         SET status = v.status, updated_at = now(), lease_until = NULL, last_error = v.error,
             next_attempt_at = CASE WHEN v.status = 'RETRY' THEN now() + make_interval(secs => v.delay_ms / 1000) END
         FROM unnest($10::bigint[], $11::int[], $12::text[], $13::float8[], $14::text[]) AS v(id, attempts, status, delay_ms, error)
         WHERE s.id = v.id AND s.status = 'SENDING' AND s.attempts = v.attempts
         RETURNING s.id, s.status, s.last_error
       )
       UPDATE notifications n
       SET status = s.status, updated_at = now(), lease_until = NULL, last_error = s.last_error
       FROM sends s
       WHERE n.group_send_id = s.id AND CASE n.status WHEN 'SENDING' THEN true ELSE false END`,
      [
        attempts.map((a) => a.groupSendId),
        attempts.map((a) => a.endpointId),
        attempts.map((a) => a.channel),
        attempts.map((a) => a.alerts),
        attempts.map((a) => a.outcome),
        attempts.map((a) => a.httpStatus),
        attempts.map((a) => a.smtpReply),
        attempts.map((a) => a.latencyMs),
        attempts.map((a) => a.error),
        updates.map((u) => u.groupSendId),
        updates.map((u) => u.attempts),
        updates.map((u) => u.decision.status),
        updates.map((u) => u.decision.nextAttemptDelayMs ?? 0),
        updates.map((u) => u.decision.error ?? null),
      ] as never[],
      prepared,
    );
  }
}
