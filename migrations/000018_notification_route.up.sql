-- Routes (src/core/policy.ts): the rules of one client that matched an alert are split by their
-- grouping, and each route is a notification and a lifecycle of its own, delivered with its own
-- grouping to its own rules' endpoints. route is "" for rules without group_by, else the grouping's
-- hash (src/core/grouping.ts, groupRoute).
ALTER TABLE notifications ADD COLUMN route text NOT NULL DEFAULT '';
ALTER TABLE alert_states ADD COLUMN route text NOT NULL DEFAULT '';

-- groupRoute in SQL, for the rows written before routes: so that an alert sent again after the
-- upgrade finds its row and its state. The defaults are Alertmanager's, as in src/core/grouping.ts.
-- Label names are compared as bytes; groupRoute compares UTF-16 code units, the same order for any
-- name without characters outside the Basic Multilingual Plane.
CREATE FUNCTION pg_temp.group_route(group_by text[], wait_ms integer, interval_ms integer, alerts_max integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT substr(encode(sha256(string_agg(int4send(octet_length(b)) || b, ''::bytea ORDER BY n)), 'hex'), 1, 32)
  FROM unnest(ARRAY(SELECT DISTINCT l COLLATE "C" FROM unnest(group_by) AS l ORDER BY 1)
              || ARRAY[coalesce(wait_ms, 30000)::text, coalesce(interval_ms, 300000)::text, coalesce(alerts_max, 100)::text])
       WITH ORDINALITY AS t(f, n)
  CROSS JOIN LATERAL convert_to(f, 'UTF8') AS b
$$;

-- A row's grouping was that of its enabled grouping rule with the lowest id (as the rules are now),
-- as the evaluator decided it. A row whose rules grouped in several ways, or not at all for some,
-- takes that grouping's route: after the upgrade, its other rules form routes of their own, which
-- notify the alert once more, as Alertmanager does after a change of its routes (alert-model.md),
-- and until the episode ends its resolved and reminder rows still go to all the row's rules.
-- Run with the aggregators stopped: their statements name the old unique key (docs/operations.md).
UPDATE notifications n
SET route = (
  SELECT pg_temp.group_route(r.group_by, r.group_wait_ms, r.group_interval_ms, r.group_alerts_max) FROM rules r
  WHERE r.id = ANY (n.rule_ids) AND r.enabled AND cardinality(r.group_by) > 0
  ORDER BY r.id LIMIT 1)
WHERE EXISTS (SELECT 1 FROM rules r WHERE r.id = ANY (n.rule_ids) AND r.enabled AND cardinality(r.group_by) > 0);
UPDATE alert_states s
SET route = n.route
FROM notifications n
WHERE n.client_id = s.client_id AND n.scope = s.scope AND n.alert_id = s.alert_key
  AND n.episode = s.episode AND n.kind = 'firing' AND n.route <> '';

-- A temporary function lives as long as the session, which the migration runner's pool keeps.
DROP FUNCTION pg_temp.group_route;

ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe;
ALTER TABLE notifications ADD CONSTRAINT notifications_dedupe UNIQUE (client_id, scope, alert_id, route, episode, kind);
ALTER TABLE alert_states DROP CONSTRAINT alert_states_pkey;
ALTER TABLE alert_states ADD PRIMARY KEY (client_id, scope, alert_key, route);
