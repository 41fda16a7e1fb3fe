-- Idempotency keys: the first response to a POST/PATCH with an Idempotency-Key, stored in the
-- same transaction as the change, replayed for retries for 24 hours. Scoped to tenant + principal.
CREATE TABLE idempotency_keys (
  tenant_id text NOT NULL REFERENCES tenants (id),
  principal text NOT NULL,
  key text NOT NULL,
  fingerprint text NOT NULL,
  status integer NOT NULL,
  headers jsonb NOT NULL,
  body jsonb,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, principal, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- The sweeper removes expired keys of every tenant; expired keys are inert, so this lets it
-- delete them without a tenant scope (permissive policies are OR-ed).
CREATE POLICY expired_cleanup ON idempotency_keys FOR DELETE
  USING (expires_at < now());
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO carebase_app;
