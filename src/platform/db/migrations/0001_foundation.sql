-- Foundation: the application role, tenants, locations, providers, patients.
-- Every table carries tenant_id, and row-level security (forced, so table owners are subject too)
-- restricts every row to the tenant the transaction set with set_config('app.tenant_id', ..., true).
-- An unset setting reads as '' (or NULL), which matches no tenant.

DO $$
BEGIN
  CREATE ROLE carebase_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- A non-superuser migrating role must be a member to switch to it at run time.
DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT carebase_app TO %I', current_user);
  END IF;
EXCEPTION WHEN duplicate_object OR insufficient_privilege OR invalid_grant_operation THEN NULL;
END $$;

GRANT USAGE ON SCHEMA public TO carebase_app;

CREATE TABLE tenants (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
  USING (id = current_setting('app.tenant_id', true))
  WITH CHECK (id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON tenants TO carebase_app;

CREATE TABLE locations (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  version integer NOT NULL DEFAULT 1,
  name text NOT NULL,
  address jsonb,
  time_zone text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE providers (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  version integer NOT NULL DEFAULT 1,
  name jsonb NOT NULL,
  npi text NOT NULL,
  specialty text,
  location_ids uuid[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX providers_npi_key ON providers (tenant_id, npi) WHERE deleted_at IS NULL;
CREATE INDEX providers_location_ids_idx ON providers USING gin (location_ids);

CREATE TABLE patients (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  version integer NOT NULL DEFAULT 1,
  name jsonb NOT NULL,
  -- Lower-cased, accent-stripped name tokens, maintained by the application, for prefix search.
  name_tokens text[] NOT NULL,
  birth_date date NOT NULL,
  gender text NOT NULL CHECK (gender IN ('male', 'female', 'other', 'unknown')),
  identifiers jsonb NOT NULL DEFAULT '[]',
  email text,
  phone text,
  address jsonb,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX patients_birth_date_idx ON patients (tenant_id, birth_date);
CREATE INDEX patients_identifiers_idx ON patients USING gin (identifiers jsonb_path_ops);
CREATE INDEX patients_name_tokens_idx ON patients USING gin (name_tokens);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['locations', 'providers', 'patients'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
      USING (tenant_id = current_setting('app.tenant_id', true))
      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    -- No DELETE: resources are soft-deleted, so the application cannot destroy rows.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO carebase_app', t);
  END LOOP;
END $$;
