-- Per-rule delivery policy on the aggregator side (docs/design/alert-model.md): each alert state keeps
-- the policy of its latest submission (AlertMatched.policy), which the sweep follows. NULL repeat
-- interval: the aggregator's REPEAT_INTERVAL_MS.
ALTER TABLE alert_states
  ADD COLUMN send_resolved boolean NOT NULL DEFAULT true,
  ADD COLUMN repeat_interval_ms bigint CHECK (repeat_interval_ms > 0);
-- Episode 0: an alert only ever seen resolved (its resolution overtook its firing submission), kept so
-- that the older firing submission stored later does not open an episode.
ALTER TABLE alert_states DROP CONSTRAINT alert_states_episode_check;
ALTER TABLE alert_states ADD CONSTRAINT alert_states_episode_check CHECK (episode >= 0);
-- A notification a rule's mute window suppressed (the evaluator decides, AlertMatched.muted_by_rule):
-- SILENCED like one a silence suppressed, recorded with the rule. No foreign key: rules live in the
-- control plane.
ALTER TABLE notifications ADD COLUMN muted_by_rule uuid;
ALTER TABLE notifications DROP CONSTRAINT notifications_silenced;
ALTER TABLE notifications ADD CONSTRAINT notifications_silenced
  CHECK ((status = 'SILENCED') = (silenced_by IS NOT NULL OR muted_by_rule IS NOT NULL));
