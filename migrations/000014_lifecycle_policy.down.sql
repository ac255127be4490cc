DELETE FROM notifications WHERE muted_by_rule IS NOT NULL;
ALTER TABLE notifications DROP CONSTRAINT notifications_silenced;
ALTER TABLE notifications DROP COLUMN muted_by_rule;
ALTER TABLE notifications ADD CONSTRAINT notifications_silenced
  CHECK ((status = 'SILENCED') = (silenced_by IS NOT NULL));
DELETE FROM alert_states WHERE episode = 0;
ALTER TABLE alert_states DROP CONSTRAINT alert_states_episode_check;
ALTER TABLE alert_states ADD CONSTRAINT alert_states_episode_check CHECK (episode > 0);
ALTER TABLE alert_states DROP COLUMN repeat_interval_ms, DROP COLUMN send_resolved;
