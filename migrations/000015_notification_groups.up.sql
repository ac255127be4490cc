-- Grouping at delivery (docs/design/alert-model.md, "Grouping"). The aggregator still writes one row
-- per (client, scope, alert, episode, kind); a row whose rule has group_by also names its group, and
-- the sender sends the group's due rows as one message per endpoint (a group send).

-- A group's schedule: when its next window may go out, and the settings the aggregator resolved when
-- it opened the group (the settings are part of the key, so they never change for one key).
CREATE TABLE notification_groups (
  group_key          text PRIMARY KEY,
  client_id          uuid NOT NULL,
  -- The group_by label names and the values they share, e.g. {"source": "billing-api"}.
  labels             jsonb NOT NULL,
  group_interval_ms  bigint NOT NULL CHECK (group_interval_ms > 0),
  group_alerts_max   integer NOT NULL CHECK (group_alerts_max > 0),
  -- The window number the next group send gets: with the key it makes the Idempotency-Key.
  next_window        integer NOT NULL DEFAULT 0,
  next_due_at        timestamptz NOT NULL,
  -- Rows may be waiting for the next window (set with every insert, cleared by the send that took them).
  has_pending        boolean NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_groups_due ON notification_groups (next_due_at) WHERE has_pending;

-- One message per group window, delivered to every endpoint its rows route to. It carries the lease,
-- attempts and retry schedule of its rows, which follow its status. A window is opened first (a short
-- statement holding its group) and its rows are fixed next (members_fixed_at); a window whose sender
-- died in between gets its rows when it is re-driven.
CREATE TABLE group_sends (
  id               bigserial PRIMARY KEY,
  client_id        uuid NOT NULL,
  group_key        text NOT NULL REFERENCES notification_groups (group_key),
  window_no        integer NOT NULL,
  alerts           integer NOT NULL DEFAULT 0,
  members_fixed_at timestamptz,
  status           text NOT NULL DEFAULT 'SENDING' CHECK (status IN ('SENDING', 'RETRY', 'SENT', 'FAILED')),
  attempts         integer NOT NULL DEFAULT 1,
  lease_until      timestamptz,
  next_attempt_at  timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT group_sends_window UNIQUE (group_key, window_no)
);
CREATE INDEX group_sends_due ON group_sends (next_attempt_at) WHERE status IN ('SENDING', 'RETRY');

-- One row per attempt of a group send on one endpoint (the grouped twin of deliveries).
CREATE TABLE group_deliveries (
  id             bigserial PRIMARY KEY,
  group_send_id  bigint NOT NULL REFERENCES group_sends (id) ON DELETE CASCADE,
  endpoint_id    uuid NOT NULL,
  channel        text NOT NULL,
  alerts         integer NOT NULL,
  attempted_at   timestamptz NOT NULL DEFAULT now(),
  outcome        text NOT NULL CHECK (outcome IN ('SUCCESS', 'RETRYABLE', 'PERMANENT')),
  http_status    integer,
  smtp_reply     text,
  latency_ms     integer NOT NULL,
  error          text
);
CREATE INDEX group_deliveries_send ON group_deliveries (group_send_id, endpoint_id);

ALTER TABLE notifications
  ADD COLUMN group_key text,
  -- When the row's group window was due as the row was written: its earliest send.
  ADD COLUMN group_due_at timestamptz,
  -- The group send that carried (or carries) the row; set once, when the sender takes the row.
  ADD COLUMN group_send_id bigint REFERENCES group_sends (id),
  ADD CONSTRAINT notifications_grouped CHECK ((group_key IS NULL) = (group_due_at IS NULL)),
  ADD CONSTRAINT notifications_group_send CHECK (group_send_id IS NULL OR group_key IS NOT NULL);
-- A group's rows waiting for a window.
CREATE INDEX notifications_group_waiting ON notifications (group_key, id)
  WHERE group_send_id IS NULL AND status = 'RECEIVED' AND group_key IS NOT NULL;
CREATE INDEX notifications_group_send ON notifications (group_send_id) WHERE group_send_id IS NOT NULL;
