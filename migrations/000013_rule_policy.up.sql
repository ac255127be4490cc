-- A rule's delivery settings (Alertmanager's route options, docs/design/alert-model.md): the API checks
-- them (src/core/policy.ts, src/core/mute-window.ts); the CHECKs only bound what a direct write can store.
-- NULL intervals take the stages' defaults; integers (24 days of ms at most) so the driver returns numbers.
ALTER TABLE rules
  ADD COLUMN send_resolved boolean NOT NULL DEFAULT true,
  ADD COLUMN repeat_interval_ms integer CHECK (repeat_interval_ms BETWEEN 1000 AND 2073600000),
  ADD COLUMN group_by text[] NOT NULL DEFAULT '{}' CHECK (cardinality(group_by) <= 16),
  ADD COLUMN group_wait_ms integer CHECK (group_wait_ms BETWEEN 0 AND 86400000),
  ADD COLUMN group_interval_ms integer CHECK (group_interval_ms BETWEEN 1000 AND 86400000),
  ADD COLUMN group_alerts_max integer CHECK (group_alerts_max BETWEEN 1 AND 1000),
  -- Each `<weekdays> <HH:MM>-<HH:MM> [<IANA time zone>]`: the rule notifies of nothing whose event
  -- time falls inside one.
  ADD COLUMN mute_windows text[] NOT NULL DEFAULT '{}' CHECK (cardinality(mute_windows) <= 16);
