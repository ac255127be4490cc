-- Groups recreated after retention deleted them fall back to the key without their incarnation,
-- whose window numbers repeat those of the key's earlier messages (at least RETENTION_DAYS old): a
-- receiver still remembering one would drop a new message as a repeat. Migrating up again leaves
-- every group without an incarnation, with the same consequence.
DROP INDEX notification_groups_idle;
ALTER TABLE notification_groups DROP COLUMN incarnation;
