-- A group window's rows are fixed as its member_ids (one write per window) instead of by writing
-- every row; a row is written once more only when its send records an outcome (status,
-- group_send_id). Until then the row still looks waiting, and the next window of its group leaves
-- out the members of the group's sends in flight (group_sends_in_flight).
ALTER TABLE group_sends ADD COLUMN member_ids bigint[];
-- Sends fixed the old way (their rows carry group_send_id) and not finished: their rows, as members.
UPDATE group_sends s
SET member_ids = (SELECT array_agg(n.id ORDER BY n.id) FROM notifications n WHERE n.group_send_id = s.id)
WHERE s.members_fixed_at IS NOT NULL AND s.status IN ('SENDING', 'RETRY');
CREATE INDEX group_sends_in_flight ON group_sends (group_key) WHERE status = 'SENDING';
-- Its check cost a lookup of the send per row written (7 us of Postgres CPU per grouped alert, a
-- tenth of all): group_send_id is only ever set from the send that the same statement updates, and a
-- send is deleted only when it took no rows (group-store.ts). Group sends are never deleted otherwise.
ALTER TABLE notifications DROP CONSTRAINT notifications_group_send_id_fkey;

-- Grouped rows never have a next_attempt_at (their group's schedule and group send drive them), so
-- notifications_due leaves them out: one index entry fewer for a grouped row's insert, and a
-- statement on a group's rows can no longer be planned over a scan of it.
DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (next_attempt_at)
  WHERE status IN ('RETRY', 'SENDING', 'RECEIVED') AND group_key IS NULL;
