/**
 * Retention of the data plane (docs/operations.md, "Retention"): what is over and older than the
 * retention goes, a bounded batch per table and statement, rows other transactions hold skipped.
 *
 *   notifications    SENT, FAILED or SILENCED, last changed before the cutoff, unless their episode
 *                    still fires (its later rows copy them: fields, silence); their delivery
 *                    attempts go with them
 *   group_sends      SENT or FAILED, last changed before the cutoff, once no notification row names
 *                    them (their attempts with them); notification_groups stay, since a group's
 *                    window numbers, part of its messages' Idempotency-Key, must never repeat
 *   alert_states     resolved, last seen before the cutoff, with no notification row left: a later
 *                    firing starts at episode 1 again, whose rows are gone
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
