-- A write's audit record travels in its outbox row, and the dispatcher stores the records of each
-- pass as audit_event_batches rows (issue 4, the cost of write auditing).
--
-- Until now the write trigger inserted every write's record into audit_events: a second nested
-- INSERT in the write's statement (with its row-level security check), a heap tuple and four index
-- entries, on top of the outbox row the same trigger inserts anyway. At saturation that cost
-- ~15 % of PATCH throughput (bench/RESULTS.md). Now the record rides in the outbox row — the same
-- statement and transaction as the change, so a change never commits without its record — and the
-- dispatcher, which already moves committed outbox rows in one statement per pass, moves their
-- records into one batch row per tenant (and ten-minute span), as the auditor does for reads
-- (migration 0010).
--
-- What stays true:
-- - The application role cannot change or remove a record at any point: it may only INSERT into
--   the outbox (and now SELECT it, for searches), and batches are append-only (0010).
-- - Sealing: a record is sealed with its batch, by the dispatcher's transaction id, in the order
--   the records entered the permanent trail. Until then it is pending, like a record whose
--   transaction has not ended.
-- - Searches, the access log, exports, verify's pending records and erasure's count read the
--   records still in the outbox too (audit-trail.sql.ts), so a record is visible from the moment
--   its write commits. A statement reads the outbox and the batches in one snapshot: the
--   dispatcher's move is atomic, so a record is in exactly one of them.
--
-- `audit` is the record as a batch element (0010): its canonical form, key id and HMAC, the text
-- the application signed, checked to be JSON. Writes whose write_meta has a record but no event
-- (none today) still insert it into audit_events.
ALTER TABLE outbox ADD COLUMN audit json;
GRANT SELECT ON outbox TO carebase_app;

CREATE OR REPLACE FUNCTION carebase_write_meta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  e jsonb;
  v integer := 1;
BEGIN
  IF NEW.write_meta IS NULL THEN
    RETURN NEW;
  END IF;
  e := NEW.write_meta -> 'event';
  IF e IS NULL THEN
    IF NEW.write_meta ? 'audit' THEN
      INSERT INTO audit_events (tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id,
        patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac)
      SELECT r.tenant_id, r.id, r.occurred_at, r.actor_sub, r.actor_roles, r.action, r.resource_type, r.resource_id,
        r.patient_id, r.outcome, r.request_id, r.client_ip, r.user_agent, r.detail, r.key_id, r.hmac
      FROM carebase_audit_batch_records(json_build_array((NEW.write_meta ->> 'audit')::json)) r;
    END IF;
  ELSE
    IF TG_NARGS < 2 THEN
      v := NEW.version;
    END IF;
    INSERT INTO outbox (tenant_id, type, resource_type, resource_id, version, patient_id, questionnaire_id, request_id, occurred_at, traceparent, audit)
    VALUES (NEW.tenant_id, e ->> 'type', TG_ARGV[0], NEW.id::text, v, (e ->> 'patientId')::uuid,
      (e ->> 'questionnaireId')::uuid, e ->> 'requestId', (e ->> 'at')::timestamptz,
      CASE WHEN e ->> 'traceparent' ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN e ->> 'traceparent' END,
      (NEW.write_meta ->> 'audit')::json);
  END IF;
  NEW.write_meta := NULL;
  RETURN NEW;
END $$;

-- As in 0011, plus the records: the rows picked that carry one become one batch row per tenant and
-- ten-minute bucket of their record ids' times (0010's CHECK on a batch's span), records in outbox
-- order. The batch's id is its first record's, as the auditor's are (PostgreSQL has no min(uuid)).
CREATE OR REPLACE FUNCTION carebase_dispatch_events(max_rows integer)
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
  ), records AS (
    SELECT p.tenant_id, p.seq, p.audit, (p.audit ->> 1)::uuid AS id, (p.audit ->> 8)::uuid AS patient_id,
      p.audit ->> 3 AS actor_sub, p.audit ->> 15 AS hmac
    FROM picked p WHERE p.audit IS NOT NULL
  ), batched AS (
    INSERT INTO audit_event_batches (tenant_id, id, first_id, last_id, patient_ids, actor_subs, record_count, records, record_ids, record_hmacs)
    SELECT r.tenant_id, (array_agg(r.id ORDER BY r.id))[1], (array_agg(r.id ORDER BY r.id))[1], (array_agg(r.id ORDER BY r.id DESC))[1],
      coalesce(array_agg(DISTINCT r.patient_id) FILTER (WHERE r.patient_id IS NOT NULL), '{}'),
      array_agg(DISTINCT r.actor_sub), count(*), json_agg(r.audit ORDER BY r.seq),
      array_agg(r.id ORDER BY r.seq), array_agg(r.hmac ORDER BY r.seq)
    FROM records r
    GROUP BY r.tenant_id, carebase_uuid7_ms(r.id) / 600000
  ), counted AS (
    SELECT p.tenant_id, count(*) AS n FROM picked p GROUP BY p.tenant_id
  ), heads AS (
    INSERT INTO event_heads AS h (tenant_id, last_id)
    SELECT c.tenant_id, c.n FROM counted c
    ON CONFLICT (tenant_id) DO UPDATE SET last_id = h.last_id + excluded.last_id
    RETURNING h.tenant_id, h.last_id
  )
  INSERT INTO events (tenant_id, id, type, resource_type, resource_id, version, patient_id, questionnaire_id, request_id, occurred_at, traceparent)
  SELECT p.tenant_id, hd.last_id - c.n + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.seq),
    p.type, p.resource_type, p.resource_id, p.version, p.patient_id, p.questionnaire_id, p.request_id, p.occurred_at, p.traceparent
  FROM picked p JOIN counted c ON c.tenant_id = p.tenant_id JOIN heads hd ON hd.tenant_id = p.tenant_id
  RETURNING *;
END $$;

-- audit_event_batches is FORCE ROW LEVEL SECURITY: even its owner, whose rights the dispatcher
-- runs with, may only insert rows of the tenant its session is scoped to, and the dispatcher works
-- across tenants with none. This policy lets the owner (the role running migrations, as which the
-- dispatcher runs) insert any tenant's batch; a superuser owner needs none (it bypasses row-level
-- security). Reads stay scoped for everyone.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY dispatcher_stores_write_records ON audit_event_batches FOR INSERT TO %I WITH CHECK (true)', current_user);
END $$;

-- Every record, as in 0012, plus the records still in the outbox (with their writing
-- transaction's id; once dispatched, a record carries its batch's).
CREATE OR REPLACE VIEW audit_trail WITH (security_invoker = true) AS
  SELECT tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome,
         request_id, client_ip, user_agent, detail, key_id, hmac, txid
    FROM audit_events
  UNION ALL
  SELECT b.tenant_id, r.id, r.occurred_at, r.actor_sub, r.actor_roles, r.action, r.resource_type, r.resource_id, r.patient_id, r.outcome,
         r.request_id, r.client_ip, r.user_agent, r.detail, r.key_id, r.hmac, b.txid
    FROM audit_event_batches b
    CROSS JOIN LATERAL carebase_audit_batch_records(b.records) r
  UNION ALL
  SELECT o.tenant_id, r.id, r.occurred_at, r.actor_sub, r.actor_roles, r.action, r.resource_type, r.resource_id, r.patient_id, r.outcome,
         r.request_id, r.client_ip, r.user_agent, r.detail, r.key_id, r.hmac, o.txid
    FROM outbox o
    CROSS JOIN LATERAL carebase_audit_batch_records(json_build_array(o.audit)) r
    WHERE o.audit IS NOT NULL;
