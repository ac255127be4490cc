DROP SEQUENCE rules_snapshot_version;
DROP TABLE rule_outbox;
