ALTER TABLE rules
  DROP COLUMN send_resolved,
  DROP COLUMN repeat_interval_ms,
  DROP COLUMN group_by,
  DROP COLUMN group_wait_ms,
  DROP COLUMN group_interval_ms,
  DROP COLUMN group_alerts_max,
  DROP COLUMN mute_windows;
