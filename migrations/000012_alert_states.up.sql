-- Alert lifecycle (docs/design/alert-model.md): Alertmanager alerts are one alert per label fingerprint
-- whatever their startsAt, with a state per (client, scope, alert key). The aggregator writes a state
-- and its notification rows in one transaction, so they cannot disagree.
CREATE TABLE alert_states (
  client_id         uuid NOT NULL,
  scope             text NOT NULL,
  alert_key         text NOT NULL,
  -- One firing period: it opens when the alert fires while not firing, and ends when it resolves.
  episode           integer NOT NULL CHECK (episode > 0),
  state             text NOT NULL CHECK (state IN ('firing', 'resolved')),
  -- The event time that opened the episode: a resolution from an older episode is ignored.
  episode_started_at timestamptz NOT NULL,
  -- The newest event time (startsAt, or when received) seen for the episode: a firing submission
  -- opens a new episode after a resolution only when newer, so a redelivered old one never does.
  last_event_at     timestamptz NOT NULL,
  last_seen_at      timestamptz NOT NULL,
  ends_at           timestamptz,
  last_notified_at  timestamptz NOT NULL,
  repeat_count      integer NOT NULL DEFAULT 0,
  PRIMARY KEY (client_id, scope, alert_key)
);
-- The sweep reads only firing states.
CREATE INDEX alert_states_firing ON alert_states (last_seen_at) WHERE state = 'firing';

-- A notification is one per (client, scope, alert, episode, kind): kind firing, resolved or
-- repeat:<n>. Alerts without a lifecycle (v1) keep episode 0 and kind firing: one per alert id.
ALTER TABLE notifications ADD COLUMN episode integer NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN kind text NOT NULL DEFAULT 'firing'
  CHECK (kind IN ('firing', 'resolved') OR kind ~ '^repeat:[1-9][0-9]*$');
ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe;
ALTER TABLE notifications ADD CONSTRAINT notifications_dedupe UNIQUE (client_id, scope, alert_id, episode, kind);
