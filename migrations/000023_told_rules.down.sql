-- Rules that joined a firing alert's route are not told of its episode again, and a resolution is
-- sent to every rule it names.
ALTER TABLE alert_states DROP COLUMN told_rule_ids;
