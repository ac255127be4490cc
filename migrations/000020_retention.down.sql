DROP INDEX alert_states_resolved;
DROP INDEX group_sends_created;
DROP INDEX notifications_created;
