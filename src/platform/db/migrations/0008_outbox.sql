-- Transactional outbox and the event log (issue 5).
--
-- Every write statement on a resource table carries `write_meta` (jsonb): the change's audit record
-- (PHI tables) and its event. A BEFORE trigger moves both into their tables and clears the column,
-- so a change, its audit record and its outbox event are one statement — atomic without a
-- transaction of their own — and the column is always NULL at rest. (0005's `audit_record` column
-- becomes `write_meta`; its audit record moves under the "audit" key.)
--
-- The dispatcher (carebase_dispatch_events) moves outbox rows of finished transactions into
-- `events`, giving each tenant's events ids 1, 2, 3, … in the order the changes were written.

CREATE TABLE outbox (
  -- Global write order: taken when the row is written, i.e. while the change holds its row lock,
  -- so two changes of one resource get seq in the order of their versions.
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id),
  -- The writing transaction: its rows are dispatched only once it has ended (see below).
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  type text NOT NULL,
  resource_type text NOT NULL,
  resource_id text NOT NULL,
  version integer NOT NULL,
  patient_id uuid,
  questionnaire_id uuid,
  request_id text,
  occurred_at timestamptz NOT NULL
);

CREATE TABLE events (
  tenant_id text NOT NULL REFERENCES tenants (id),
  id bigint NOT NULL CHECK (id > 0),
  type text NOT NULL,
  resource_type text NOT NULL,
  resource_id text NOT NULL,
  version integer NOT NULL,
  patient_id uuid,
  questionnaire_id uuid,
  request_id text,
  occurred_at timestamptz NOT NULL,
  dispatched_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_dispatched_idx ON events (dispatched_at);

-- Per tenant: the last id given out, and the last id removed by retention (a resume from before
-- it cannot be served: resync-required).
CREATE TABLE event_heads (
  tenant_id text PRIMARY KEY REFERENCES tenants (id),
  last_id bigint NOT NULL CHECK (last_id >= 0),
  purged_through bigint NOT NULL DEFAULT 0 CHECK (purged_through >= 0)
);

-- Row-level security as everywhere, but not FORCEd: the application role is scoped to its tenant,
-- while the functions below (SECURITY DEFINER, owned by the migrating role) work across tenants.
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON events
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE event_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON event_heads
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- The application writes the outbox (through the trigger) and reads the log; only the dispatcher
-- and retention change events.
GRANT INSERT ON outbox TO carebase_app;
GRANT SELECT ON events, event_heads TO carebase_app;

-- The write trigger, for every resource table. Its arguments: the resource type as events name it,
-- and 'immutable' for tables whose rows never change and have no version column (consents: v1).
CREATE FUNCTION carebase_write_meta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  e jsonb;
  v integer := 1;
BEGIN
  IF NEW.write_meta IS NULL THEN
    RETURN NEW;
  END IF;
  IF NEW.write_meta ? 'audit' THEN
    -- Columns named: audit_events may gain columns the record does not carry (0009's txid).
    INSERT INTO audit_events (tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id,
      patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac)
    SELECT r.tenant_id, r.id, r.occurred_at, r.actor_sub, r.actor_roles, r.action, r.resource_type, r.resource_id,
      r.patient_id, r.outcome, r.request_id, r.client_ip, r.user_agent, r.detail, r.key_id, r.hmac
    FROM jsonb_populate_record(NULL::audit_events, NEW.write_meta -> 'audit') r;
  END IF;
  e := NEW.write_meta -> 'event';
  IF e IS NOT NULL THEN
    IF TG_NARGS < 2 THEN
      v := NEW.version;
    END IF;
    INSERT INTO outbox (tenant_id, type, resource_type, resource_id, version, patient_id, questionnaire_id, request_id, occurred_at)
    VALUES (NEW.tenant_id, e ->> 'type', TG_ARGV[0], NEW.id::text, v, (e ->> 'patientId')::uuid,
      (e ->> 'questionnaireId')::uuid, e ->> 'requestId', (e ->> 'at')::timestamptz);
  END IF;
  NEW.write_meta := NULL;
  RETURN NEW;
END $$;

DROP TRIGGER patients_audit ON patients;
DROP TRIGGER questionnaire_responses_audit ON questionnaire_responses;
DROP TRIGGER consents_audit ON consents;
DROP FUNCTION carebase_audit_write();
ALTER TABLE patients RENAME COLUMN audit_record TO write_meta;
ALTER TABLE questionnaire_responses RENAME COLUMN audit_record TO write_meta;
ALTER TABLE consents RENAME COLUMN audit_record TO write_meta;
ALTER TABLE providers ADD COLUMN write_meta jsonb;
ALTER TABLE locations ADD COLUMN write_meta jsonb;
ALTER TABLE questionnaires ADD COLUMN write_meta jsonb;
CREATE TRIGGER patients_write_meta BEFORE INSERT OR UPDATE ON patients
  FOR EACH ROW EXECUTE FUNCTION carebase_write_meta('patients');
CREATE TRIGGER questionnaire_responses_write_meta BEFORE INSERT OR UPDATE ON questionnaire_responses
  FOR EACH ROW EXECUTE FUNCTION carebase_write_meta('questionnaire-responses');
CREATE TRIGGER consents_write_meta BEFORE INSERT ON consents
  FOR EACH ROW EXECUTE FUNCTION carebase_write_meta('consents', 'immutable');
CREATE TRIGGER providers_write_meta BEFORE INSERT OR UPDATE ON providers
  FOR EACH ROW EXECUTE FUNCTION carebase_write_meta('providers');
CREATE TRIGGER locations_write_meta BEFORE INSERT OR UPDATE ON locations
  FOR EACH ROW EXECUTE FUNCTION carebase_write_meta('locations');
CREATE TRIGGER questionnaires_write_meta BEFORE INSERT OR UPDATE ON questionnaires
  FOR EACH ROW EXECUTE FUNCTION carebase_write_meta('questionnaires');

-- Dispatch: takes up to max_rows outbox rows of transactions that have ended — their txid is
-- below the oldest transaction still running, so no row can still appear before them — in seq
-- order, numbers them per tenant after event_heads.last_id, stores them in events and returns
-- them. One dispatcher at a time across all instances (the transaction-scoped advisory lock; a
-- second caller returns nothing at once), so every event is dispatched exactly once. A row of a
-- transaction still running is left for a later call, and an earlier-seq row left this way can
-- only be of another resource (a change of the same resource would have waited for its lock).
CREATE FUNCTION carebase_dispatch_events(max_rows integer)
RETURNS SETOF events
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  horizon xid8;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('carebase.dispatch-events', 0)) THEN
    RETURN;
  END IF;
  horizon := pg_snapshot_xmin(pg_current_snapshot());
  RETURN QUERY
  WITH picked AS (
    DELETE FROM outbox o
    WHERE o.seq IN (SELECT seq FROM outbox WHERE txid < horizon ORDER BY seq LIMIT max_rows)
    RETURNING o.*
  ), counted AS (
    SELECT p.tenant_id, count(*) AS n FROM picked p GROUP BY p.tenant_id
  ), heads AS (
    INSERT INTO event_heads AS h (tenant_id, last_id)
    SELECT c.tenant_id, c.n FROM counted c
    ON CONFLICT (tenant_id) DO UPDATE SET last_id = h.last_id + excluded.last_id
    RETURNING h.tenant_id, h.last_id
  )
  INSERT INTO events (tenant_id, id, type, resource_type, resource_id, version, patient_id, questionnaire_id, request_id, occurred_at)
  SELECT p.tenant_id, hd.last_id - c.n + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.seq),
    p.type, p.resource_type, p.resource_id, p.version, p.patient_id, p.questionnaire_id, p.request_id, p.occurred_at
  FROM picked p JOIN counted c ON c.tenant_id = p.tenant_id JOIN heads hd ON hd.tenant_id = p.tenant_id
  RETURNING *;
END $$;
REVOKE ALL ON FUNCTION carebase_dispatch_events(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION carebase_dispatch_events(integer) TO carebase_app;

-- Retention: removes events dispatched before `older_than` ago and records, per tenant, the last
-- id removed. Returns how many were removed.
CREATE FUNCTION carebase_purge_events(older_than interval)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  removed bigint;
BEGIN
  WITH gone AS (
    DELETE FROM events WHERE dispatched_at < now() - older_than RETURNING tenant_id, id
  ), per_tenant AS (
    SELECT tenant_id, max(id) AS through, count(*) AS n FROM gone GROUP BY tenant_id
  ), marked AS (
    UPDATE event_heads h SET purged_through = greatest(h.purged_through, t.through)
    FROM per_tenant t WHERE h.tenant_id = t.tenant_id
    RETURNING t.n
  )
  SELECT coalesce(sum(n), 0) INTO removed FROM marked;
  RETURN removed;
END $$;
REVOKE ALL ON FUNCTION carebase_purge_events(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION carebase_purge_events(interval) TO carebase_app;
