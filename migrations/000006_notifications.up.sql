-- One row per (client, alert): the dedupe boundary of the whole pipeline.
-- status: RECEIVED -> SENDING (leased by one sender) -> SENT | RETRY -> ... | FAILED.
CREATE TABLE notifications (
  id               bigserial PRIMARY KEY,
  client_id        uuid NOT NULL,
  alert_id         text NOT NULL,
  severity         text NOT NULL,
  source           text NOT NULL,
  name             text NOT NULL,
  context          jsonb NOT NULL DEFAULT '{}',
  rule_ids         uuid[] NOT NULL,
  event_time       timestamptz NOT NULL,
  status           text NOT NULL DEFAULT 'RECEIVED'
                   CHECK (status IN ('RECEIVED', 'SENDING', 'RETRY', 'SENT', 'FAILED')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  lease_until      timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notifications_dedupe UNIQUE (client_id, alert_id)
);
CREATE INDEX notifications_client_status ON notifications (client_id, status, id);
-- The retry scheduler and lease reclaimer only ever look at non-terminal rows.
CREATE INDEX notifications_due ON notifications (next_attempt_at)
  WHERE status IN ('RETRY', 'SENDING', 'RECEIVED');
