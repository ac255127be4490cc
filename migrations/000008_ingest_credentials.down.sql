ALTER TABLE api_keys DROP COLUMN expires_at, DROP COLUMN name;
DROP TABLE ingest_credentials;
DROP TABLE scope_grants;
DROP TABLE shared_scopes;
