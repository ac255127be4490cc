CREATE INDEX group_deliveries_send ON group_deliveries (group_send_id, endpoint_id);
DROP INDEX group_deliveries_attempt;
ALTER TABLE group_deliveries DROP COLUMN attempt;
CREATE INDEX deliveries_notification ON deliveries (notification_id, endpoint_id);
DROP INDEX deliveries_attempt;
ALTER TABLE deliveries DROP COLUMN attempt;
