ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe;
ALTER TABLE notifications ADD CONSTRAINT notifications_dedupe UNIQUE (client_id, alert_id);
ALTER TABLE notifications DROP COLUMN scope;
