/**
 * The sender's view of groups (docs/design/alert-model.md, "Grouping"): open a due group's next
 * window as a group send over its waiting rows, re-drive group sends whose retry came due or whose
 * lease expired, find each send's endpoints, and record an attempt. A group send carries the lease,
 * attempts and retry schedule of its rows.
 *
 * A window is opened in one short statement (its send and window number) and its rows are fixed right
 * after, before its first message, as the send's member_ids: a repeat after a crash or a retry sends
 * the same alerts under the same Idempotency-Key. The rows themselves are written once, by the
 * statement that records the send's first outcome (their status, group_send_id and attempts), and
 * again only by its later outcomes: a grouped row costs its insert and one update, not one more per
 * step. Until then a row of a window in flight still looks waiting in notifications, and the next
 * window of its group leaves it out by its send's member_ids.
 */
import type { Endpoint, Notification } from "../channels/types.ts";
import type { StatusDecision } from "../core/delivery-status.ts";
import { type ClaimedRow, toNotification } from "./delivery-store.ts";
import { inIdOrder, prepared, type Sql } from "./postgres.ts";

export interface ClaimedGroupSend {
  id: string;
  clientId: string;
  groupKey: string;
  windowNo: number;
  /** The group's incarnation, part of the Idempotency-Key (src/core/grouping.ts); null: older than 000022. */
  incarnation: number | null;
  labels: Record<string, string>;
  alertsMax: number;
  /** Attempts including this claim; fences the status update against a later claimer. */
  attempts: number;
  /** Local time (performance.now()) just before the statement that leased the send. */
  leasedAtMs: number;
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
  /** The endpoints earlier attempts finished with, and the rows each carried. */
  finished: { memberIds: Set<string>; outcome: "SUCCESS" | "PERMANENT" }[];
}

export interface GroupAttemptRecord {
  groupSendId: string;
  /** The send's attempts count: one record per (send, endpoint, attempt). */
  attempt: number;
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

/** One row's status after its send's attempt (decideMemberStatuses). */
export interface GroupRowStatus {
  groupSendId: string;
  notificationId: string;
  status: StatusDecision["status"];
  error: string | null;
}

/** A window opened by openWindows (or re-driven): the send without its rows. */
export type OpenedWindow = Omit<ClaimedGroupSend, "members">;

interface OpenedWindowRow {
  send_id: string;
  group_key: string;
  client_id: string;
  labels: Record<string, string>;
  group_alerts_max: number;
  window_no: number;
  /** Selected as float8 (ms since 1970, exact below 2^53), so that it arrives as a number. */
  incarnation: number | null;
  attempts: number;
}

function toOpenedWindow(row: OpenedWindowRow, leasedAtMs: number): OpenedWindow {
  return {
    id: String(row.send_id),
    clientId: row.client_id,
    groupKey: row.group_key,
    windowNo: row.window_no,
    incarnation: row.incarnation,
    labels: row.labels,
    alertsMax: row.group_alerts_max,
    attempts: row.attempts,
    leasedAtMs,
  };
}

type MemberRow = Omit<ClaimedRow, "client_id" | "attempts">;

const memberColumns =
  "n.id, n.alert_id, n.severity, n.source, n.name, n.context, array_to_json(n.rule_ids) AS rule_ids, n.event_time, n.kind";

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

/** The two-key advisory lock space of fixing windows, one lock per group (apart from the lifecycle's). */
const groupFixLockSpace = 7_415;

/**
 * fixMembers' statement, run once the windows' groups are locked: $1 the windows' send ids (an array
 * literal), $2 the rows one window takes at most. Exported for the plan test
 * (test/sender/group-store.test.ts).
 */
export const fixMembersStatement = `WITH sends AS (
         SELECT id, group_key FROM group_sends
         WHERE id = ANY($1::bigint[]) AND members_fixed_at IS NULL
         ORDER BY id FOR UPDATE
       ), picked AS (
         -- Per window the ids it takes (the cap, in id order) and whether more wait. A waiting row of
         -- a window of the group still in flight is that window's: its outcome has not marked it yet.
         SELECT s.id AS send_id, s.group_key, w.ids, w.waiting > $2 AS more
         FROM sends s CROSS JOIN LATERAL (
           SELECT (array_agg(id ORDER BY id))[1:$2] AS ids, count(*) AS waiting FROM (
             SELECT n.id FROM notifications n
             WHERE n.group_key = s.group_key AND n.group_send_id IS NULL AND n.status = 'RECEIVED'
               AND n.id NOT IN (SELECT unnest(o.member_ids) FROM group_sends o
                                WHERE o.group_key = s.group_key AND o.status = 'SENDING')
             ORDER BY n.id LIMIT $2::int + 1) x) w
       ), fixed AS (
         UPDATE group_sends s
         SET member_ids = p.ids, alerts = cardinality(p.ids), members_fixed_at = now(), updated_at = now()
         FROM picked p WHERE s.id = p.send_id AND p.ids IS NOT NULL
       ), emptied AS (
         DELETE FROM group_sends g USING picked p WHERE g.id = p.send_id AND p.ids IS NULL
       ), more AS (
         UPDATE notification_groups g SET has_pending = true
         FROM (SELECT group_key FROM notification_groups
               WHERE group_key IN (SELECT group_key FROM picked WHERE more)
               ORDER BY group_key FOR UPDATE) l
         WHERE g.group_key = l.group_key
       )
       ${membersOf("picked p", "p.send_id", "p.ids")}`;

/** No window of the group `g` is in flight (group_sends_in_flight). */
function noWindowInFlight(g: string): string {
  return `NOT EXISTS (SELECT 1 FROM group_sends o WHERE o.group_key = ${g}.group_key AND o.status = 'SENDING')`;
}

/**
 * The rows of sends in `from`, each by its primary key: the row estimate of unnest is fixed, so with
 * the statistics of a fresh table or of a filled one this is a nested loop over the ids. Joined to
 * windows by group instead, the planner had run a nested loop of every waiting row over every window
 * (0.9 s for 100 windows of 100 rows) or over a scan of notifications_due (28 s for 10,000 rows).
 * Statistics of an emptied table that has filled again (autovacuum off) still defeat it: the planner
 * then hashes a full scan of another index per send (bench/README.md, "Table state").
 */
function membersOf(from: string, sendId: string, ids: string, where = "true"): string {
  return `SELECT ${sendId} AS send_id, ${memberColumns}
       FROM ${from} CROSS JOIN LATERAL unnest(${ids}) AS i(id) JOIN notifications n ON n.id = i.id
       WHERE ${where}`;
}

export class GroupStore {
  constructor(
    private readonly sql: Sql,
    private readonly leaseMs: number,
    /** Rows one window takes at most; the rest wait for the group's next window. */
    private readonly rowsPerSendMax: number,
  ) {}

  /**
   * Milliseconds until the earliest window of a group with waiting rows is due (<= 0: due); null: none.
   * A group whose window is in flight is not due (openWindows).
   */
  async nextDueInMs(): Promise<number | null> {
    const [row] = await this.sql.unsafe<{ ms: number | null }[]>(
      `SELECT (extract(epoch FROM min(next_due_at) - now()) * 1000)::float8 AS ms
       FROM notification_groups g WHERE has_pending AND ${noWindowInFlight("g")}`,
      [],
      prepared,
    );
    return row?.ms ?? null;
  }

  /** Re-driven sends first (they are older), then new windows of due groups; at most `limit` of each. */
  async claimDue(limit: number): Promise<ClaimedGroupSend[]> {
    const redriven = await this.redriveDue(limit);
    const opened = await this.fixMembers(await this.openWindows(limit));
    return [...redriven, ...opened];
  }

  /**
   * Opens the next window of up to `limit` due groups with waiting rows, in one short statement: a
   * group send per group (its window number and lease), the group moved to its next window
   * (group_interval later) and its waiting mark cleared. Its rows are fixed by fixMembers in a later
   * transaction, so the group rows stay locked only for this statement: an aggregator marking a group
   * (openGroups in notification-store.ts, the last statement of its transaction) waits at most this
   * long. Every row committed before the mark was cleared is visible to fixMembers; a later one set
   * the mark again: none is stranded. The lock waits rather than skipping (a steady stream would keep
   * a group nearly always held), in key order as the aggregator and the sweep take groups, and is
   * re-checked once held, so a group another sender just opened is left alone. A group whose last
   * window is still in flight (SENDING) waits for its outcome: its windows reach a receiver in order,
   * so a later window's resolution never arrives before an earlier one's firing (one that is to be
   * retried does not hold the group back).
   */
  async openWindows(limit: number): Promise<OpenedWindow[]> {
    const leasedAtMs = performance.now();
    const rows = await this.sql.unsafe<OpenedWindowRow[]>(
      `WITH due AS (
         SELECT group_key FROM notification_groups g
         WHERE group_key IN (SELECT group_key FROM notification_groups g
                             WHERE has_pending AND next_due_at <= now() AND ${noWindowInFlight("g")}
                             ORDER BY next_due_at LIMIT $1)
           AND has_pending AND next_due_at <= now()
         ORDER BY group_key FOR UPDATE
       ), opened AS (
         UPDATE notification_groups g
         SET has_pending = false, next_window = g.next_window + 1,
             next_due_at = now() + make_interval(secs => g.group_interval_ms / 1000.0)
         FROM due WHERE g.group_key = due.group_key
         RETURNING g.group_key, g.client_id, g.labels, g.group_alerts_max, g.next_window - 1 AS window_no,
                   g.incarnation::float8 AS incarnation
       ), sends AS (
         INSERT INTO group_sends (client_id, group_key, window_no, alerts, lease_until, next_attempt_at)
         SELECT client_id, group_key, window_no, 0, now() + ${leaseInterval}, now() + ${leaseInterval} FROM opened
         RETURNING id, group_key
       )
       SELECT s.id AS send_id, o.group_key, o.client_id, o.labels, o.group_alerts_max, o.window_no, o.incarnation,
              1 AS attempts
       FROM sends s JOIN opened o ON o.group_key = s.group_key`,
      [limit, this.leaseMs] as never[],
      prepared,
    );
    return rows.map((row) => toOpenedWindow(row, leasedAtMs));
  }

  /**
   * Fixes the rows of opened windows whose rows are not fixed yet: each takes its group's waiting
   * rows (at most rowsPerSendMax; a group with more is marked waiting again for its next window) as
   * its member_ids, and is marked fixed; a window that found none is deleted. From here on a window's
   * rows never change: a retry or a repeat after a crash sends them again under its key. Windows
   * fixed meanwhile (by the sender that re-drove them) are left alone. A group's windows are fixed
   * one at a time, across senders (a transaction lock per group, taken before the statement that
   * reads the waiting rows, so that it sees what the previous fix took), the aggregator never waits
   * for it.
   */
  async fixMembers(windows: readonly OpenedWindow[]): Promise<ClaimedGroupSend[]> {
    if (windows.length === 0) return [];
    const keys = [...new Set(windows.map((w) => w.groupKey))].sort();
    const rows = await this.sql.begin(async (tx) => {
      await tx.unsafe(
        `SELECT pg_advisory_xact_lock(${groupFixLockSpace}, hashtext(k)) FROM unnest($1::text[]) AS k`,
        [`{${keys.join(",")}}`] as never[],
        prepared,
      );
      return tx.unsafe<(MemberRow & { send_id: string })[]>(
        fixMembersStatement,
        [`{${windows.map((w) => w.id).join(",")}}`, this.rowsPerSendMax] as never[],
        prepared,
      );
    });
    const sends = new Map(windows.map((w) => [w.id, { ...w, members: [] as Notification[] }]));
    for (const row of rows) {
      const send = sends.get(String(row.send_id));
      if (send !== undefined) send.members.push(toNotification(row, send.clientId));
    }
    const fixed = [...sends.values()].filter((send) => send.members.length > 0);
    for (const send of fixed) send.members.sort(byId);
    return fixed;
  }

  /**
   * Claims up to `limit` sends whose retry came due or whose lease expired (a crashed sender), with
   * their rows, skipping sends another sender holds. A window opened but never fixed (its sender
   * died in between) gets its rows now.
   */
  async redriveDue(limit: number): Promise<ClaimedGroupSend[]> {
    const leasedAtMs = performance.now();
    const claimed = await this.sql.unsafe<(OpenedWindowRow & { fixed: boolean })[]>(
      `WITH due AS (
         SELECT id FROM group_sends WHERE status IN ('SENDING', 'RETRY') AND next_attempt_at <= now()
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       ), sends AS (
         UPDATE group_sends s
         SET status = 'SENDING', attempts = s.attempts + 1, updated_at = now(),
             lease_until = now() + ${leaseInterval}, next_attempt_at = now() + ${leaseInterval}
         FROM due WHERE s.id = due.id
         RETURNING s.id, s.client_id, s.group_key, s.window_no, s.attempts, s.members_fixed_at IS NOT NULL AS fixed
       )
       SELECT s.id AS send_id, s.group_key, s.client_id, g.labels, g.group_alerts_max, s.window_no, g.incarnation::float8 AS incarnation,
              s.attempts, s.fixed
       FROM sends s JOIN notification_groups g ON g.group_key = s.group_key`,
      [limit, this.leaseMs] as never[],
      prepared,
    );
    if (claimed.length === 0) return [];
    const unfixed = claimed.filter((row) => !row.fixed).map((row) => toOpenedWindow(row, leasedAtMs));
    const fixed = new Map(
      claimed
        .filter((row) => row.fixed)
        .map((row) => [
          String(row.send_id),
          { ...toOpenedWindow(row, leasedAtMs), members: [] as Notification[] },
        ]),
    );
    if (fixed.size > 0) {
      const members = await this.sql.unsafe<(MemberRow & { send_id: string })[]>(
        membersOf("group_sends s", "s.id", "s.member_ids", "s.id = ANY($1::bigint[])"),
        [`{${[...fixed.keys()].join(",")}}`] as never[],
        prepared,
      );
      for (const row of members) {
        const send = fixed.get(String(row.send_id));
        if (send !== undefined) send.members.push(toNotification(row, send.clientId));
      }
      for (const send of fixed.values()) send.members.sort(byId);
    }
    return [...fixed.values(), ...(await this.fixMembers(unfixed))];
  }

  /**
   * Extends the lease of each send still ours (SENDING with the attempts we claimed) by the lease from
   * now, as a claim sets it; returns their ids. A send another sender claimed meanwhile is left alone.
   */
  async renewLeases(leased: readonly { id: string; attempts: number }[]): Promise<Set<string>> {
    if (leased.length === 0) return new Set();
    const sends = inIdOrder(leased, (s) => s.id);
    const rows = await this.sql.unsafe<{ id: string }[]>(
      `UPDATE group_sends s
       SET lease_until = now() + ${leaseInterval}, next_attempt_at = now() + ${leaseInterval}
       FROM unnest($1::bigint[], $3::int[]) AS v(id, attempts)
       WHERE s.id = v.id AND s.status = 'SENDING' AND s.attempts = v.attempts
       RETURNING s.id`,
      [
        `{${sends.map((s) => s.id).join(",")}}`,
        this.leaseMs,
        `{${sends.map((s) => s.attempts).join(",")}}`,
      ] as never[],
      prepared,
    );
    return new Set(rows.map((row) => String(row.id)));
  }

  /**
   * Per send, the enabled endpoints its rows' rules name, deduplicated by (type, value) (the lowest
   * endpoint id stands for them), each with the rows routed to it; minus addresses already delivered
   * or refused for good in an earlier attempt of the send, through whichever endpoint row (see
   * delivery-store.ts, finalOutcome). The rows' rule ids are in hand, so one
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
        : await this.sql.unsafe<{ send_id: string; type: string; value: string; outcome: string }[]>(
            `SELECT DISTINCT d.group_send_id AS send_id, e.type, e.value, d.outcome
             FROM group_deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.group_send_id = ANY($1::bigint[]) AND d.outcome IN ('SUCCESS', 'PERMANENT')`,
            [`{${retried.join(",")}}`] as never[],
            prepared,
          );
    const finalOutcome = new Map(finals.map((f) => [`${f.send_id}/${f.type}\u0000${f.value}`, f.outcome]));
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
      const entry: SendWork = { pending: [], finished: [] };
      for (const endpointWork of byAddress.values()) {
        const { type, value } = endpointWork.endpoint;
        const outcome = finalOutcome.get(`${send.id}/${type}\u0000${value}`);
        if (outcome === "SUCCESS" || outcome === "PERMANENT")
          entry.finished.push({ memberIds: endpointWork.memberIds, outcome });
        else entry.pending.push(endpointWork);
      }
      work.set(send.id, entry);
    }
    return work;
  }

  /**
   * Records every endpoint attempt of the sends and applies their statuses to the sends and each row
   * its own (`rows`, every member of each send) in one statement, only while a send is still ours
   * (SENDING with the attempts we claimed). This is where a row gets its group_send_id: from here on
   * it is no longer waiting.
   */
  async recordAttempt(
    attempts: readonly GroupAttemptRecord[],
    decided: readonly GroupStatusUpdate[],
    rowStatuses: readonly GroupRowStatus[],
  ): Promise<void> {
    const updates = inIdOrder(decided, (u) => u.groupSendId);
    const rows = inIdOrder(rowStatuses, (r) => r.notificationId);
    await this.sql.unsafe(
      `WITH recorded AS (
         INSERT INTO group_deliveries (group_send_id, endpoint_id, channel, alerts, outcome, http_status, smtp_reply, latency_ms, error, attempt)
         SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::int[], $7::text[], $8::int[], $9::text[], $19::int[])
         ON CONFLICT (group_send_id, endpoint_id, attempt) DO NOTHING
       ), sends AS (
         UPDATE group_sends s
         SET status = v.status, updated_at = now(), lease_until = NULL, last_error = v.error,
             next_attempt_at = CASE WHEN v.status = 'RETRY' THEN now() + make_interval(secs => v.delay_ms / 1000) END
         FROM unnest($10::bigint[], $11::int[], $12::text[], $13::float8[], $14::text[]) AS v(id, attempts, status, delay_ms, error)
         WHERE s.id = v.id AND s.status = 'SENDING' AND s.attempts = v.attempts
         RETURNING s.id, s.attempts
       )
       UPDATE notifications n
       SET status = r.status, group_send_id = s.id, attempts = s.attempts, updated_at = now(), lease_until = NULL,
           last_error = r.error
       FROM unnest($15::bigint[], $16::bigint[], $17::text[], $18::text[]) AS r(send_id, id, status, error)
         JOIN sends s ON s.id = r.send_id
       -- A row an earlier attempt of its send ended stays as it is, as an ungrouped row does: its
       -- endpoints may have changed since (one disabled would now read "no enabled endpoint").
       WHERE n.id = r.id AND NOT (n.group_send_id IS NOT DISTINCT FROM s.id AND n.status IN ('SENT', 'FAILED'))`,
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
        rows.map((r) => r.groupSendId),
        rows.map((r) => r.notificationId),
        rows.map((r) => r.status),
        rows.map((r) => r.error),
        attempts.map((a) => a.attempt),
      ] as never[],
      prepared,
    );
  }
}
