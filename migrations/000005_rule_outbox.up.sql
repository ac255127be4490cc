-- Transactional outbox for `rule.changed`: written in the same transaction as the rule change,
-- published in id order by the relay, marked sent only after Kafka acknowledged it.
CREATE TABLE rule_outbox (
  id          bigserial PRIMARY KEY,
  rule_id     uuid NOT NULL,
  client_id   uuid NOT NULL,
  action      text NOT NULL CHECK (action IN ('CREATED', 'UPDATED', 'DELETED')),
  version     integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz
);
CREATE INDEX rule_outbox_unsent ON rule_outbox (id) WHERE sent_at IS NULL;

-- Version of each rules snapshot build. Taken under an advisory lock before the rules are read, so a
-- higher version always holds rules read later: Redis `rules:version` never goes backwards.
CREATE SEQUENCE rules_snapshot_version;
