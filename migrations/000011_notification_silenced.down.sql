-- The older schema has no place for a suppressed notification.
DELETE FROM notifications WHERE status = 'SILENCED';
ALTER TABLE notifications DROP CONSTRAINT notifications_silenced;
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
  CHECK (status IN ('RECEIVED', 'SENDING', 'RETRY', 'SENT', 'FAILED'));
ALTER TABLE notifications DROP COLUMN silenced_by;
