-- Which rules were told that an alert's episode fires (src/core/lifecycle.ts): a rule that joins the
-- route while the alert fires hears of it at its next submission, and only told rules hear that it
-- resolved. And which rules its latest submission named, and whether a silence held it: reminders
-- leave out told rules that no longer match (disabled, deleted, moved to another route), and none is
-- sent while silenced. NULL: not known; every rule counts as told, and as matched, as before.
ALTER TABLE alert_states
  ADD COLUMN told_rule_ids uuid[],
  ADD COLUMN matched_rule_ids uuid[],
  ADD COLUMN silenced boolean NOT NULL DEFAULT false;
-- Firing episodes told so far: the rules their unmuted firing and reminder rows named. A state whose
-- rows retention already deleted stays NULL.
UPDATE alert_states s
SET told_rule_ids = (
  SELECT array_agg(DISTINCT r ORDER BY r)
  FROM notifications n CROSS JOIN LATERAL unnest(n.rule_ids) AS r
  WHERE n.client_id = s.client_id AND n.scope = s.scope AND n.alert_id = s.alert_key AND n.route = s.route
    AND n.episode = s.episode AND n.kind <> 'resolved' AND n.muted_by_rule IS NULL)
WHERE s.state = 'firing' AND s.notified;
