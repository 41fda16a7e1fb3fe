-- Questionnaire definitions (FHIR R4 Questionnaire). The resource is kept whole as jsonb so an
-- imported form (items, contained ValueSets, extensions) comes back as it was sent; status, title
-- and url are copied into columns, maintained by the application, for filtering.
CREATE TABLE questionnaires (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  version integer NOT NULL DEFAULT 1,
  status text NOT NULL CHECK (status IN ('draft', 'active', 'retired')),
  title text,
  url text,
  -- The FHIR Questionnaire without its id (ours is the column); its status equals the column's.
  resource jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
-- Lists are keyset pages by id within a tenant; these serve the status and url filters.
CREATE INDEX questionnaires_status_idx ON questionnaires (tenant_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX questionnaires_url_idx ON questionnaires (tenant_id, url) WHERE deleted_at IS NULL;
-- The title filter is a case-insensitive substring match, which no btree can serve (pg_trgm is not
-- loaded by the embedded database); it scans the tenant's definitions, which are few.

ALTER TABLE questionnaires ENABLE ROW LEVEL SECURITY;
ALTER TABLE questionnaires FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON questionnaires
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- No DELETE: questionnaires are soft-deleted (and only drafts), so the application cannot destroy rows.
GRANT SELECT, INSERT, UPDATE ON questionnaires TO carebase_app;
