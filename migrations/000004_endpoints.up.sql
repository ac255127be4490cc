-- Where a rule's notifications go. `secret` signs webhook bodies (HMAC-SHA256) and is never returned.
CREATE TABLE endpoints (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  rule_id     uuid NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  type        text NOT NULL CHECK (type IN ('email', 'slack', 'webhook')),
  value       text NOT NULL CHECK (length(value) BETWEEN 1 AND 2000),
  secret      text,
  enabled     boolean NOT NULL DEFAULT true,
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT endpoints_unique_per_rule UNIQUE (rule_id, type, value)
);
CREATE INDEX endpoints_client_id ON endpoints (client_id, id);
