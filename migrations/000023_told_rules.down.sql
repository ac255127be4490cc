-- Rules that joined a firing alert's route are not told of its episode again, a resolution is sent
-- to every rule it names, and reminders to every rule of the episode's first notification, silenced
-- or not.
ALTER TABLE alert_states DROP COLUMN told_rule_ids, DROP COLUMN matched_rule_ids, DROP COLUMN silenced;
