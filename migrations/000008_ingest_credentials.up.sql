-- Scopes: the stream an ingested alert came in under. Each client has a private scope of its own
-- (`client:<id>`, never stored); the admin creates shared scopes and grants them to clients. A rule
-- matches only alerts of scopes its client is granted.
CREATE TABLE shared_scopes (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE scope_grants (
  scope_id    uuid NOT NULL REFERENCES shared_scopes (id) ON DELETE CASCADE,
  client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope_id, client_id)
);
CREATE INDEX scope_grants_client_id ON scope_grants (client_id);
-- Who may submit alerts, and under which scope: a client's own, or one shared scope. Only a SHA-256
-- of the secret is stored; `prefix` identifies a credential in listings.
CREATE TABLE ingest_credentials (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  client_id    uuid REFERENCES clients (id) ON DELETE CASCADE,
  scope_id     uuid REFERENCES shared_scopes (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  secret_hash  bytea NOT NULL UNIQUE,
  prefix       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  CONSTRAINT ingest_credentials_one_scope CHECK ((client_id IS NULL) <> (scope_id IS NULL))
);
CREATE INDEX ingest_credentials_client_id ON ingest_credentials (client_id, id);
CREATE INDEX ingest_credentials_scope_id ON ingest_credentials (scope_id, id);

ALTER TABLE api_keys
  ADD COLUMN name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  ADD COLUMN expires_at timestamptz;
