-- Deduplication is per scope: an alert id from one scope can never suppress the same id in another.
-- '' is the scope of alerts internal producers write straight to Kafka.
ALTER TABLE notifications ADD COLUMN scope text NOT NULL DEFAULT '';
ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe;
ALTER TABLE notifications ADD CONSTRAINT notifications_dedupe UNIQUE (client_id, scope, alert_id);
