-- A rule matches an alert when each of severity, source and name equals the alert's or is '*'.
CREATE TABLE rules (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  severity    text NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL', '*')),
  source      text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  enabled     boolean NOT NULL DEFAULT true,
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT rules_not_all_wildcards CHECK (NOT (severity = '*' AND source = '*' AND name = '*')),
  CONSTRAINT rules_unique_per_client UNIQUE (client_id, severity, source, name)
);
CREATE INDEX rules_client_id ON rules (client_id, id);
