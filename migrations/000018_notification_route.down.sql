-- Back to one notification and one state per (client, scope, alert): the lowest route's is kept, the
-- others deleted with their delivery history, delivered or not (a group send may still list them).
DELETE FROM notifications n
WHERE EXISTS (
  SELECT 1 FROM notifications o
  WHERE o.client_id = n.client_id AND o.scope = n.scope AND o.alert_id = n.alert_id
    AND o.episode = n.episode AND o.kind = n.kind AND o.route < n.route
);
DELETE FROM alert_states s
WHERE EXISTS (
  SELECT 1 FROM alert_states o
  WHERE o.client_id = s.client_id AND o.scope = s.scope AND o.alert_key = s.alert_key AND o.route < s.route
);
ALTER TABLE alert_states DROP CONSTRAINT alert_states_pkey;
ALTER TABLE alert_states ADD PRIMARY KEY (client_id, scope, alert_key);
ALTER TABLE alert_states DROP COLUMN route;
ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe;
ALTER TABLE notifications ADD CONSTRAINT notifications_dedupe UNIQUE (client_id, scope, alert_id, episode, kind);
ALTER TABLE notifications DROP COLUMN route;
