-- Silences, Alertmanager's: while `starts_at <= now() <= ends_at`, a client gets no notification for
-- an alert whose labels all of `matchers` match. Expiring one sets ends_at = now(), so the row stays
-- as the record of what was silenced and when. matchers: [{name, value, isRegex, isEqual}], checked
-- by the API (src/core/silence.ts); the CHECKs here only bound what a direct write can store.
CREATE TABLE silences (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  matchers    jsonb NOT NULL CHECK (jsonb_typeof(matchers) = 'array' AND jsonb_array_length(matchers) >= 1),
  starts_at   timestamptz NOT NULL,
  ends_at     timestamptz NOT NULL,
  created_by  text NOT NULL CHECK (length(created_by) <= 256),
  comment     text NOT NULL CHECK (length(comment) <= 4096),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT silences_ends_after_start CHECK (ends_at >= starts_at)
);
CREATE INDEX silences_client_id ON silences (client_id, ends_at);
-- The snapshot build reads every silence that has not ended.
CREATE INDEX silences_ends_at ON silences (ends_at);
