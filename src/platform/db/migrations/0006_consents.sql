-- Consents: a patient's decisions about purposes that need their consent (third-party sharing,
-- research, marketing, appointment reminders; the list is in src/features/consents/purposes.ts and
-- enforced by the API). Append-only history: a change of mind is a new row, and the latest row
-- per (patient, purpose) is the decision in force. The application role may INSERT and SELECT
-- only, so recorded decisions can neither be rewritten nor removed by the application.
CREATE TABLE consents (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  patient_id uuid NOT NULL,
  purpose text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9-]{0,63}$'),
  decision text NOT NULL CHECK (decision IN ('granted', 'revoked')),
  recorded_at timestamptz NOT NULL,
  actor_sub text NOT NULL,
  actor_roles text[] NOT NULL,
  note text CHECK (char_length(note) BETWEEN 1 AND 500),
  created_at timestamptz NOT NULL,
  -- Always NULL at rest: the change's audit record on its way to audit_events (see 0005).
  audit_record jsonb,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id)
);
-- History per patient and purpose, and the latest decision (ids are UUIDv7: creation order).
CREATE INDEX consents_patient_purpose_idx ON consents (tenant_id, patient_id, purpose, id);

ALTER TABLE consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE consents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON consents
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- No UPDATE, no DELETE: consent history is append-only.
GRANT SELECT, INSERT ON consents TO carebase_app;

-- Each consent change's audit record (action 'consent') is written by the INSERT itself.
CREATE TRIGGER consents_audit BEFORE INSERT ON consents
  FOR EACH ROW EXECUTE FUNCTION carebase_audit_write();
