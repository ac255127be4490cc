-- A rule with mute windows is a route of its own (src/core/grouping.ts, deliveryRoute), so that a
-- muted rule neither mutes another rule's endpoints nor lets them page during its windows. Rows
-- written before take the route the aggregator now computes, so that an alert sent again after the
-- upgrade finds its row and its state: an episode moves, all its rows and its state together, when
-- the rules of its firing row are one enabled rule with mute windows. An episode of several rules
-- stays; after the upgrade its rule with windows is a route of its own, which notifies the alert once
-- more, as after any change of a client's routes (docs/design/alert-model.md).
-- Run with the evaluators stopped and the aggregators drained, then stopped (docs/operations.md, Upgrades).

-- deliveryRoute's muted part in SQL: over 'muted_rule', the grouping's route and the rule id, as
-- length-prefixed UTF-8 fields.
CREATE FUNCTION pg_temp.muted_rule_route(route text, rule_id uuid)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT substr(encode(sha256(string_agg(int4send(octet_length(b)) || b, ''::bytea ORDER BY n)), 'hex'), 1, 32)
  FROM unnest(ARRAY['muted_rule', route, rule_id::text]) WITH ORDINALITY AS t(f, n)
  CROSS JOIN LATERAL convert_to(f, 'UTF8') AS b
$$;

CREATE TEMPORARY TABLE moved_episodes ON COMMIT DROP AS
SELECT n.client_id, n.scope, n.alert_id, n.episode, n.route AS old_route,
       pg_temp.muted_rule_route(n.route, min(r.id::text)::uuid) AS new_route
FROM notifications n
JOIN rules r ON r.id = ANY (n.rule_ids) AND r.enabled
WHERE n.kind = 'firing'
GROUP BY n.id
HAVING count(*) = 1 AND bool_and(cardinality(r.mute_windows) > 0);

-- A state already on its new route (a new aggregator ran before this migration) keeps it.
UPDATE alert_states s
SET route = m.new_route
FROM moved_episodes m
WHERE m.client_id = s.client_id AND m.scope = s.scope AND m.alert_id = s.alert_key
  AND m.old_route = s.route AND m.episode = s.episode
  AND NOT EXISTS (SELECT 1 FROM alert_states x
                  WHERE x.client_id = s.client_id AND x.scope = s.scope AND x.alert_key = s.alert_key
                    AND x.route = m.new_route);
UPDATE notifications n
SET route = m.new_route
FROM moved_episodes m
WHERE m.client_id = n.client_id AND m.scope = n.scope AND m.alert_id = n.alert_id
  AND m.old_route = n.route AND m.episode = n.episode
  AND NOT EXISTS (SELECT 1 FROM notifications x
                  WHERE x.client_id = n.client_id AND x.scope = n.scope AND x.alert_id = n.alert_id
                    AND x.route = m.new_route AND x.episode = n.episode AND x.kind = n.kind);

-- A temporary function lives as long as the session, which the migration runner's pool keeps.
DROP FUNCTION pg_temp.muted_rule_route;
