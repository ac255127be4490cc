-- Mute windows are part of a route (src/core/grouping.ts, deliveryRoute): a client's rules with other
-- mute windows are routes of their own, so that a muted rule neither mutes the endpoints of another
-- rule nor lets them page during its windows. Rows written before take the route the aggregator now
-- computes, so that an alert sent again after the upgrade finds its row and its state: a row moves
-- when its enabled rules all have the same windows (sorted, each once). A row whose rules differ
-- stays; after the upgrade its rules with windows form routes of their own, which notify the alert
-- once more, as after any change of a client's routes (docs/design/alert-model.md).
-- Run with the evaluators and aggregators stopped (docs/operations.md, Upgrades).

-- deliveryRoute's muted part in SQL: over 'mute_windows', the grouping's route and the windows, as
-- length-prefixed UTF-8 fields. Windows compare as bytes, as JavaScript's sort for ASCII text.
CREATE FUNCTION pg_temp.muted_route(route text, windows text[])
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT substr(encode(sha256(string_agg(int4send(octet_length(b)) || b, ''::bytea ORDER BY n)), 'hex'), 1, 32)
  FROM unnest(ARRAY['mute_windows', route] || windows) WITH ORDINALITY AS t(f, n)
  CROSS JOIN LATERAL convert_to(f, 'UTF8') AS b
$$;

CREATE TEMPORARY TABLE moved_routes ON COMMIT DROP AS
SELECT n.id, n.client_id, n.scope, n.alert_id, n.episode, n.kind, n.route AS old_route,
       pg_temp.muted_route(n.route, min(w.windows)) AS new_route
FROM notifications n
CROSS JOIN LATERAL (
  SELECT ARRAY(SELECT DISTINCT x COLLATE "C" FROM unnest(r.mute_windows) AS x ORDER BY 1) AS windows
  FROM rules r WHERE r.id = ANY (n.rule_ids) AND r.enabled) AS w
GROUP BY n.id
HAVING count(DISTINCT w.windows) = 1 AND min(cardinality(w.windows)) > 0;

UPDATE alert_states s
SET route = m.new_route
FROM moved_routes m
WHERE m.client_id = s.client_id AND m.scope = s.scope AND m.alert_id = s.alert_key
  AND m.old_route = s.route AND m.episode = s.episode AND m.kind = 'firing';
UPDATE notifications n SET route = m.new_route FROM moved_routes m WHERE n.id = m.id;

-- A temporary function lives as long as the session, which the migration runner's pool keeps.
DROP FUNCTION pg_temp.muted_route;
