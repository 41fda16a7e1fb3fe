-- Erasure of a patient (right to erasure): the request, its progress and its report. The patient
-- is soft-deleted at once (every route answers 404 from then on); the rows holding the patient's
-- data are then removed, and the request row records what was erased. A request interrupted half
-- way is 'in-progress' and is resumed by repeating it.
CREATE TABLE patient_erasures (
  tenant_id text NOT NULL REFERENCES tenants (id),
  patient_id uuid NOT NULL,
  status text NOT NULL CHECK (status IN ('in-progress', 'completed')),
  reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL,
  completed_at timestamptz,
  report jsonb,
  PRIMARY KEY (tenant_id, patient_id)
);
ALTER TABLE patient_erasures ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_erasures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON patient_erasures
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON patient_erasures TO carebase_app;

-- The one hard delete of patient data. The application role has no DELETE on these tables (it
-- soft-deletes everywhere else); this function, owned by the migrating role, removes exactly one
-- patient's rows in the calling session's tenant, and only once an erasure of that patient is
-- recorded. Row-level security still applies to the owner (FORCE), so it cannot reach another
-- tenant either. Audit records are kept: they hold the patient's id only (a pseudonym once the
-- patient row is gone) and their chain must stay verifiable.
CREATE FUNCTION carebase_erase_patient_rows(p_patient uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  t text := current_setting('app.tenant_id', true);
  n_consents integer;
  n_responses integer;
  n_patients integer;
BEGIN
  IF coalesce(t, '') = '' THEN
    RAISE EXCEPTION 'no tenant set' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM patient_erasures WHERE tenant_id = t AND patient_id = p_patient) THEN
    RAISE EXCEPTION 'no erasure is recorded for this patient' USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM consents WHERE tenant_id = t AND patient_id = p_patient;
  GET DIAGNOSTICS n_consents = ROW_COUNT;
  -- One statement: amendments and the responses they amend go together (the FK is checked at its end).
  DELETE FROM questionnaire_responses WHERE tenant_id = t AND patient_id = p_patient;
  GET DIAGNOSTICS n_responses = ROW_COUNT;
  DELETE FROM patients WHERE tenant_id = t AND id = p_patient;
  GET DIAGNOSTICS n_patients = ROW_COUNT;
  RETURN jsonb_build_object('patients', n_patients, 'questionnaireResponses', n_responses, 'consents', n_consents);
END $$;
REVOKE ALL ON FUNCTION carebase_erase_patient_rows(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION carebase_erase_patient_rows(uuid) TO carebase_app;
