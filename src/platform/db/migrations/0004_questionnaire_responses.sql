-- Questionnaire responses (FHIR R4 QuestionnaireResponse items). A response is pinned to the
-- questionnaire it was started on (id + that questionnaire's version at start; active and retired
-- questionnaires never change beyond their status, so the id is enough to read the definition).
-- A submitted response ('completed' or 'amended') never changes; an amendment is a new row that
-- names the response it amends.
CREATE TABLE questionnaire_responses (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  version integer NOT NULL DEFAULT 1,
  questionnaire_id uuid NOT NULL,
  questionnaire_version integer NOT NULL,
  patient_id uuid NOT NULL,
  status text NOT NULL CHECK (status IN ('in-progress', 'completed', 'amended')),
  items jsonb NOT NULL DEFAULT '[]',
  score jsonb,
  amends uuid,
  amend_reason text,
  submitted_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
  FOREIGN KEY (tenant_id, questionnaire_id) REFERENCES questionnaires (tenant_id, id),
  FOREIGN KEY (tenant_id, amends) REFERENCES questionnaire_responses (tenant_id, id),
  CHECK ((status = 'in-progress') = (submitted_at IS NULL)),
  CHECK ((status = 'amended') = (amends IS NOT NULL))
);
CREATE INDEX questionnaire_responses_patient_idx ON questionnaire_responses (tenant_id, patient_id, id) WHERE deleted_at IS NULL;
CREATE INDEX questionnaire_responses_questionnaire_idx ON questionnaire_responses (tenant_id, questionnaire_id, id) WHERE deleted_at IS NULL;

ALTER TABLE questionnaire_responses ENABLE ROW LEVEL SECURITY;
ALTER TABLE questionnaire_responses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON questionnaire_responses
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- No DELETE: in-progress responses are soft-deleted; submitted ones are never removed.
GRANT SELECT, INSERT, UPDATE ON questionnaire_responses TO carebase_app;
