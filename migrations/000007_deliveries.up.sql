-- One row per delivery attempt on one endpoint. A notification is done on an endpoint once it has
-- a SUCCESS row there, so a retry re-sends only to endpoints not yet delivered.
CREATE TABLE deliveries (
  id               bigserial PRIMARY KEY,
  notification_id  bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  endpoint_id      uuid NOT NULL,
  channel          text NOT NULL,
  attempted_at     timestamptz NOT NULL DEFAULT now(),
  outcome          text NOT NULL CHECK (outcome IN ('SUCCESS', 'RETRYABLE', 'PERMANENT')),
  http_status      integer,
  smtp_reply       text,
  latency_ms       integer NOT NULL,
  error            text
);
CREATE INDEX deliveries_notification ON deliveries (notification_id, endpoint_id);
