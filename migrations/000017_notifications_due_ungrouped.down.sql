DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (next_attempt_at)
  WHERE status IN ('RETRY', 'SENDING', 'RECEIVED');
