DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (next_attempt_at)
  WHERE status IN ('RETRY', 'SENDING', 'RECEIVED');

-- The rows of windows in flight carry their send again, as the old sender fixes them.
UPDATE notifications n
SET group_send_id = s.id, status = 'SENDING', attempts = s.attempts, lease_until = s.lease_until
FROM group_sends s CROSS JOIN LATERAL unnest(s.member_ids) AS m(id)
WHERE n.id = m.id AND s.status = 'SENDING' AND n.group_send_id IS NULL;
ALTER TABLE notifications
  ADD CONSTRAINT notifications_group_send_id_fkey FOREIGN KEY (group_send_id) REFERENCES group_sends (id);
DROP INDEX group_sends_in_flight;
ALTER TABLE group_sends DROP COLUMN member_ids;
