/**
 * Retention of the data plane (docs/operations.md, "Retention"): what is over and older than the
 * retention goes, a bounded batch per table and statement, rows other transactions hold skipped.
 *
 *   notifications    SENT, FAILED or SILENCED, last changed before the cutoff, unless their episode
 *                    still fires (its later rows copy them: fields, silence); their delivery
 *                    attempts go with them
 *   group_sends      SENT or FAILED, last changed before the cutoff, once no notification row names
 *                    them (their attempts with them)
 *   alert_states     resolved, last seen before the cutoff, with no notification row left: a later
 *                    firing starts at episode 1 again, whose rows are gone
 *   notification_groups
 *                    idle (nothing waiting) since before the cutoff, with no waiting row and no
 *                    group send left (deleteIdleGroups): a group recreated later is a new
 *                    incarnation, its windows counting from 0 under other Idempotency-Keys
 *                    (src/core/grouping.ts)
 *
 * A group goes only when nothing can name it again. A grouped row names its group while it waits
 * (notifications_group_waiting; a row of a window in flight still waits), then through the group
 * send that carried it (written with its outcome), which stays as long as a row names it. A
 * notification of a still-firing episode stays, and with it its send and group, so the sweep's later
 * rows (which copy their firing row's group_key and only mark the group, never create it) never
 * point at a deleted group. An aggregator writing rows of the group meanwhile either locks the group
 * row first (openGroups' upsert; locked rows are skipped, and a row it changed no longer qualifies
 * once locked) or recreates it after the delete commits, as a new incarnation.
 *
 * A deleted notification no longer deduplicates: the retention must outlast any record that can be
 * consumed again, that is the topics' retention (docs/operations.md).
 */
import type { Sql } from "./postgres.ts";

export interface ExpiredCounts {
  notifications: number;
  groupSends: number;
  alertStates: number;
}

/** Written out in each condition (now() is the statement's), so that each can use its index. */
const cutoff = "now() - make_interval(secs => $1::float8 / 1000)";

export async function deleteExpired(
  sql: Sql,
  retentionMs: number,
  batchSizeMax: number,
): Promise<ExpiredCounts> {
  const [counts] = await sql.unsafe<ExpiredCounts[]>(
    `WITH notifications_gone AS (
       DELETE FROM notifications n USING (
         SELECT id FROM notifications f
         WHERE updated_at < ${cutoff} AND status IN ('SENT', 'FAILED', 'SILENCED')
           -- An episode still firing keeps its rows: its later rows copy them (silence, fields).
           AND NOT EXISTS (
             SELECT 1 FROM alert_states s
             WHERE s.client_id = f.client_id AND s.scope = f.scope AND s.alert_key = f.alert_id
               AND s.route = f.route AND s.episode = f.episode AND s.state = 'firing')
         LIMIT $2 FOR UPDATE SKIP LOCKED) d
       WHERE n.id = d.id
       RETURNING 1
     ), sends_gone AS (
       DELETE FROM group_sends s USING (
         SELECT id FROM group_sends g
         WHERE updated_at < ${cutoff} AND status IN ('SENT', 'FAILED')
           -- The rows it carried name it: it goes after them, so that a notification shown
           -- always has its group message.
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.group_send_id = g.id)
         LIMIT $2 FOR UPDATE SKIP LOCKED) d
       WHERE s.id = d.id
       RETURNING 1
     ), states_gone AS (
       -- Rows this statement deletes are still visible to it: their states go on a later one.
       DELETE FROM alert_states s USING (
         SELECT client_id, scope, alert_key, route FROM alert_states a
         WHERE state = 'resolved' AND last_seen_at < ${cutoff}
           AND NOT EXISTS (
             SELECT 1 FROM notifications n
             WHERE n.client_id = a.client_id AND n.scope = a.scope AND n.alert_id = a.alert_key AND n.route = a.route)
         LIMIT $2 FOR UPDATE OF a SKIP LOCKED) d
       WHERE (s.client_id, s.scope, s.alert_key, s.route) = (d.client_id, d.scope, d.alert_key, d.route)
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM notifications_gone)::int AS notifications,
            (SELECT count(*) FROM sends_gone)::int AS "groupSends",
            (SELECT count(*) FROM states_gone)::int AS "alertStates"`,
    [retentionMs, batchSizeMax] as never[],
  );
  return counts as ExpiredCounts;
}

/** Where a pass over the idle groups stands: the last group examined, in (next_due_at, key) order. */
export interface GroupCursor {
  /** next_due_at as Postgres prints it (microseconds kept). */
  dueAt: string;
  key: string;
}

/**
 * Examines the next `sliceSizeMax` idle groups after `after` (null: from the first) and deletes those
 * nothing names. Returns where to go on from, null once the pass reached the last idle group. A pass
 * walks the idle groups a slice per call, so that groups still named (by an episode firing for longer
 * than the retention) cost each call at most a slice of index probes, and never hide the groups
 * behind them.
 */
export async function deleteIdleGroups(
  sql: Sql,
  retentionMs: number,
  sliceSizeMax: number,
  after: GroupCursor | null,
): Promise<{ deleted: number; next: GroupCursor | null }> {
  const [row] = await sql.unsafe<
    { deleted: number; examined: number; due_at: string | null; key: string | null }[]
  >(
    `WITH slice AS (
       SELECT group_key, next_due_at FROM notification_groups
       WHERE NOT has_pending AND next_due_at < ${cutoff} AND (next_due_at, group_key) > ($3::text::timestamptz, $4::text)
       ORDER BY next_due_at, group_key LIMIT $2
     ), gone AS (
       DELETE FROM notification_groups g USING (
         SELECT group_key FROM notification_groups i
         WHERE group_key IN (SELECT group_key FROM slice) AND NOT has_pending AND next_due_at < ${cutoff}
           AND NOT EXISTS (
             SELECT 1 FROM notifications n
             WHERE n.group_key = i.group_key AND n.group_send_id IS NULL AND n.status = 'RECEIVED')
           -- Its sends reference it, and the rows they carried name them: it goes after them.
           AND NOT EXISTS (SELECT 1 FROM group_sends s WHERE s.group_key = i.group_key)
         FOR UPDATE SKIP LOCKED) d
       WHERE g.group_key = d.group_key
       RETURNING 1
     ), last AS (
       SELECT next_due_at, group_key FROM slice ORDER BY next_due_at DESC, group_key DESC LIMIT 1
     )
     SELECT (SELECT count(*) FROM gone)::int AS deleted, (SELECT count(*) FROM slice)::int AS examined,
            (SELECT next_due_at::text FROM last) AS due_at, (SELECT group_key FROM last) AS key`,
    [retentionMs, sliceSizeMax, after?.dueAt ?? "-infinity", after?.key ?? ""] as never[],
  );
  const { deleted = 0, examined = 0, due_at: dueAt = null, key = null } = row ?? {};
  const next = examined < sliceSizeMax || dueAt === null || key === null ? null : { dueAt, key };
  return { deleted, next };
}
