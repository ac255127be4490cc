-- Groups recreated after retention deleted them fall back to the key without their incarnation,
-- whose window numbers repeat those of the key's earlier messages (at least RETENTION_DAYS old): a
-- receiver still remembering one would drop a new message as a repeat.
DROP INDEX notifications_group;
DROP INDEX notification_groups_idle;
ALTER TABLE notification_groups DROP COLUMN incarnation;
