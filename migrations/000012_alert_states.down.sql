DELETE FROM notifications WHERE episode <> 0 OR kind <> 'firing';
ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe;
ALTER TABLE notifications ADD CONSTRAINT notifications_dedupe UNIQUE (client_id, scope, alert_id);
ALTER TABLE notifications DROP COLUMN kind;
ALTER TABLE notifications DROP COLUMN episode;
DROP TABLE alert_states;
