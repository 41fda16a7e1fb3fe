-- Batched read records are stored a flush at a time: one row per tenant per flush, holding the
-- records themselves as a jsonb array. Each element is the record's canonical form — the JSON
-- array its HMAC is computed over (audit-record.ts) — followed by its key id and HMAC: the same
-- fields as an audit_events row, in the order carebase_audit_batch_records() reads them.
--
-- One audit_events row per read cost the database a heap tuple, four index entries and their WAL
-- for every cached read, about as much as the read itself. A batch row costs that once per flush
-- (up to 1,000 records, compressed by TOAST), plus one GIN entry per distinct patient and actor.
-- Records stay individually signed, sealed and verifiable: seals cover a batch's records by the
-- batch row's transaction, exactly like audit_events rows (migration 0009).
--
-- audit_events keeps every write's record (in the write's own statement, migrations 0005/0008) and
-- the reads written with AUDIT_READS=sync. audit_trail is both, one record per row, for reading;
-- the application's searches read the two tables with their own indexes (audit-trail.sql.ts).
-- The millisecond timestamp of a UUIDv7 (its first 48 bits).
CREATE FUNCTION carebase_uuid7_ms(u uuid) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ('x' || lpad(substr(replace(u::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint
$$;

CREATE TABLE audit_event_batches (
  tenant_id text NOT NULL, -- no reference to tenants: see the end of this file
  -- The id of the batch's first record: a retried flush of the same batch conflicts instead of
  -- storing its records twice.
  id uuid NOT NULL,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  -- The smallest and largest record id (UUIDv7s of occurred_at): time ranges and pagination. A
  -- batch spans at most 10 minutes (the auditor splits longer ones), so a search for records after
  -- an id need not look at batches that start more than 10 minutes before it.
  first_id uuid NOT NULL,
  last_id uuid NOT NULL,
  -- Every patient and every actor the records name, once each: searches by patient or actor.
  patient_ids uuid[] NOT NULL,
  actor_subs text[] NOT NULL,
  -- How many records: lets the sealer take a batch's worth of batches without reading them.
  -- (Verification never trusts it: it reads the records themselves.)
  record_count integer NOT NULL CHECK (record_count > 0),
  records jsonb NOT NULL CHECK (jsonb_typeof(records) = 'array'),
  PRIMARY KEY (tenant_id, id),
  CHECK (carebase_uuid7_ms(last_id) - carebase_uuid7_ms(first_id) BETWEEN 0 AND 600000)
);
-- lz4 where the server has it (PostgreSQL as Debian builds it; PGlite has not): it compresses a
-- batch as well as the default (pglz) for about a fifth of the CPU.
DO $$
BEGIN
  ALTER TABLE audit_event_batches ALTER COLUMN records SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
CREATE INDEX audit_event_batches_txid_idx ON audit_event_batches (tenant_id, txid);
-- Searches walk batches oldest first by first_id, newest first by last_id (audit-trail.sql.ts).
CREATE INDEX audit_event_batches_first_id_idx ON audit_event_batches (tenant_id, first_id) INCLUDE (last_id);
CREATE INDEX audit_event_batches_last_id_idx ON audit_event_batches (tenant_id, last_id) INCLUDE (first_id);
CREATE INDEX audit_event_batches_patients_idx ON audit_event_batches USING gin (patient_ids);
CREATE INDEX audit_event_batches_actors_idx ON audit_event_batches USING gin (actor_subs);

CREATE TRIGGER audit_event_batches_append_only BEFORE UPDATE OR DELETE ON audit_event_batches
  FOR EACH ROW EXECUTE FUNCTION carebase_append_only();
CREATE TRIGGER audit_event_batches_no_truncate BEFORE TRUNCATE ON audit_event_batches
  FOR EACH STATEMENT EXECUTE FUNCTION carebase_append_only();
ALTER TABLE audit_event_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_event_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_event_batches
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON audit_event_batches TO carebase_app;

-- A batch's records as rows shaped like audit_events.
CREATE FUNCTION carebase_audit_batch_records(records jsonb)
RETURNS TABLE (tenant_id text, id uuid, occurred_at timestamptz, actor_sub text, actor_roles text[], action text,
  resource_type text, resource_id text, patient_id uuid, outcome text, request_id text, client_ip text, user_agent text,
  detail jsonb, key_id text, hmac text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT a->>0, (a->>1)::uuid, (a->>2)::timestamptz, a->>3, ARRAY(SELECT jsonb_array_elements_text(a->4)), a->>5,
    a->>6, a->>7, (a->>8)::uuid, a->>9, a->>10, a->>11, a->>12, NULLIF(a->13, 'null'::jsonb), a->>14, a->>15
  FROM jsonb_array_elements(records) AS x(a)
$$;

-- Every record, one per row, with the transaction that wrote it. security_invoker: the reader's
-- own row-level security applies (a tenant sees its own records only).
CREATE VIEW audit_trail WITH (security_invoker = true) AS
  SELECT tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome,
         request_id, client_ip, user_agent, detail, key_id, hmac, txid
    FROM audit_events
  UNION ALL
  SELECT b.tenant_id, r.id, r.occurred_at, r.actor_sub, r.actor_roles, r.action, r.resource_type, r.resource_id, r.patient_id, r.outcome,
         r.request_id, r.client_ip, r.user_agent, r.detail, r.key_id, r.hmac, b.txid
    FROM audit_event_batches b
    CROSS JOIN LATERAL carebase_audit_batch_records(b.records) r;
GRANT SELECT ON audit_trail TO carebase_app;

-- The audit and outbox tables no longer reference tenants. A foreign key check takes a KEY SHARE
-- lock on the tenant's row for every inserted record; with many concurrent writers in one tenant,
-- each transaction turns that one hot row's lock into a new MultiXact (and dirties its page), which
-- serialized part of every write. Tenants are never deleted (the application role has no DELETE
-- on tenants), and these rows are only written with the tenant the session is scoped to (row-level
-- security WITH CHECK), so the reference guarded against nothing that can happen.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_tenant_id_fkey;
