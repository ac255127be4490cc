-- A rule with mute windows is a route of its own (src/core/grouping.ts, deliveryRoute), so that a
-- muted rule neither mutes another rule's endpoints nor lets them page during its windows. Rows
-- written before take the route the aggregator now computes, so that an alert sent again after the
-- upgrade finds its row and its state: an alert's state and rows on a route move together when the
-- firing row of the state's episode has one enabled rule, with mute windows. An alert of several rules
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

-- Per alert and route, from its state's current episode: the state and every row of the route move
-- together, so that the route's episode numbers stay its state's; nothing moves onto a route that
-- already has a state or a row (a new aggregator ran before this migration).
CREATE TEMPORARY TABLE moved_routes ON COMMIT DROP AS
SELECT s.client_id, s.scope, s.alert_key, s.route AS old_route,
       pg_temp.muted_rule_route(s.route, min(r.id::text)::uuid) AS new_route
FROM alert_states s
JOIN notifications n ON n.client_id = s.client_id AND n.scope = s.scope AND n.alert_id = s.alert_key
  AND n.route = s.route AND n.episode = s.episode AND n.kind = 'firing'
JOIN rules r ON r.id = ANY (n.rule_ids) AND r.enabled
GROUP BY s.client_id, s.scope, s.alert_key, s.route
HAVING count(*) = 1 AND bool_and(cardinality(r.mute_windows) > 0);

DELETE FROM moved_routes m
WHERE EXISTS (SELECT 1 FROM alert_states x
              WHERE x.client_id = m.client_id AND x.scope = m.scope AND x.alert_key = m.alert_key
                AND x.route = m.new_route)
   OR EXISTS (SELECT 1 FROM notifications x
              WHERE x.client_id = m.client_id AND x.scope = m.scope AND x.alert_id = m.alert_key
                AND x.route = m.new_route);

UPDATE alert_states s
SET route = m.new_route
FROM moved_routes m
WHERE m.client_id = s.client_id AND m.scope = s.scope AND m.alert_key = s.alert_key AND m.old_route = s.route;
UPDATE notifications n
SET route = m.new_route
FROM moved_routes m
WHERE m.client_id = n.client_id AND m.scope = n.scope AND m.alert_key = n.alert_id AND m.old_route = n.route;

-- A temporary function lives as long as the session, which the migration runner's pool keeps.
DROP FUNCTION pg_temp.muted_rule_route;
