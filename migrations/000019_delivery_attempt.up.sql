-- Each delivery row names the claim it was made under (the notification's or group send's attempts
-- count then), unique per endpoint: recording a dispatch again after a commit whose answer was lost
-- adds no second row (the status update was already fenced on the attempts count). Rows from before
-- have none (NULL, never equal). The unique index also serves the lookups the old one did.
ALTER TABLE deliveries ADD COLUMN attempt integer;
CREATE UNIQUE INDEX deliveries_attempt ON deliveries (notification_id, endpoint_id, attempt);
DROP INDEX deliveries_notification;
ALTER TABLE group_deliveries ADD COLUMN attempt integer;
CREATE UNIQUE INDEX group_deliveries_attempt ON group_deliveries (group_send_id, endpoint_id, attempt);
DROP INDEX group_deliveries_send;
