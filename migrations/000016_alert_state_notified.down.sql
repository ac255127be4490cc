ALTER TABLE alert_states DROP COLUMN notified;
