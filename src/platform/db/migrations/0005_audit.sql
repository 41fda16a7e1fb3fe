-- Audit trail: one row per access to patient data (read, create, update, delete, export, erase,
-- consent change, and every denied or failed attempt). Append-only: the application role may
-- INSERT and SELECT, and triggers refuse UPDATE, DELETE and TRUNCATE for everyone (an operator
-- who disables them leaves traces that `carebase audit verify` reports). Each row carries an HMAC
-- over its canonical JSON computed by the application with a key held outside the database;
-- audit_chain seals rows in order into a hash chain (also HMAC-keyed).
CREATE TABLE audit_events (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  occurred_at timestamptz NOT NULL,
  actor_sub text NOT NULL,
  actor_roles text[] NOT NULL,
  action text NOT NULL,
  resource_type text NOT NULL,
  resource_id text,
  patient_id uuid,
  outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
  request_id text,
  client_ip text,
  user_agent text,
  detail jsonb,
  key_id text NOT NULL,
  hmac text NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_patient_idx ON audit_events (tenant_id, patient_id, id) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_actor_idx ON audit_events (tenant_id, actor_sub, id);
CREATE INDEX audit_events_time_idx ON audit_events (tenant_id, occurred_at);

CREATE TABLE audit_chain (
  tenant_id text NOT NULL REFERENCES tenants (id),
  position bigint NOT NULL CHECK (position > 0),
  event_id uuid NOT NULL,
  event_hmac text NOT NULL,
  hash text NOT NULL,
  sealed_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, position),
  UNIQUE (tenant_id, event_id)
);

CREATE FUNCTION carebase_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION carebase_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION carebase_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION carebase_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION carebase_append_only();

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON audit_events, audit_chain TO carebase_app;

-- The audit record of a write travels in the written row itself: the write statement sets
-- audit_record to the record (already HMAC'd by the application), and this trigger moves it into
-- audit_events and clears the column. So a change and its audit record are one statement — atomic
-- without a transaction of their own, and without a round trip more — and the column is always
-- NULL at rest.
CREATE FUNCTION carebase_audit_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.audit_record IS NOT NULL THEN
    INSERT INTO audit_events SELECT * FROM jsonb_populate_record(NULL::audit_events, NEW.audit_record);
    NEW.audit_record := NULL;
  END IF;
  RETURN NEW;
END $$;

ALTER TABLE patients ADD COLUMN audit_record jsonb;
ALTER TABLE questionnaire_responses ADD COLUMN audit_record jsonb;
CREATE TRIGGER patients_audit BEFORE INSERT OR UPDATE ON patients
  FOR EACH ROW EXECUTE FUNCTION carebase_audit_write();
CREATE TRIGGER questionnaire_responses_audit BEFORE INSERT OR UPDATE ON questionnaire_responses
  FOR EACH ROW EXECUTE FUNCTION carebase_audit_write();
