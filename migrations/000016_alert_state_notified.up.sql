-- Mute windows are judged per submission (src/core/lifecycle.ts): an episode that opened inside a
-- rule's mute window is not notified until a submission arrives after the window closed. Until then
-- the sweep sends it no reminder and its resolution no notification.
ALTER TABLE alert_states ADD COLUMN notified boolean NOT NULL DEFAULT true;
-- Episodes whose firing row was muted: so far only muted rows were written for them.
UPDATE alert_states s SET notified = false
WHERE EXISTS (
  SELECT 1 FROM notifications n
  WHERE n.client_id = s.client_id AND n.scope = s.scope AND n.alert_id = s.alert_key
    AND n.episode = s.episode AND n.kind = 'firing' AND n.muted_by_rule IS NOT NULL
);
