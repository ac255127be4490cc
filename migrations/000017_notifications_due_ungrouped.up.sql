-- Grouped rows never have a next_attempt_at (their group's schedule and group send drive them), so
-- notifications_due leaves them out: two index entries fewer per grouped row (its insert, and its
-- window taking it), and a statement on a group's rows can no longer be planned over a scan of it.
DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (next_attempt_at)
  WHERE status IN ('RETRY', 'SENDING', 'RECEIVED') AND group_key IS NULL;
