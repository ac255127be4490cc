DROP INDEX alert_states_resolved;
DROP INDEX group_sends_finished;
DROP INDEX notifications_finished;
