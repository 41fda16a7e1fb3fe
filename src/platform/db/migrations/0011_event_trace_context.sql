-- Events carry the trace their change was made in (issue 6, tracing).
--
-- When tracing is on, a write's `write_meta` event holds the W3C `traceparent` of the span it ran
-- in (src/features/shared/write-meta.ts). The trigger keeps it in the outbox row, the dispatcher
-- in the event row, and from there it reaches every instance's subscribers (never the clients:
-- the contract's event JSON is unchanged) and whatever the event causes (webhooks, jobs), which
-- can then continue that trace. NULL when tracing is off or the change was not traced.
--
-- Only a well-formed traceparent is kept (version 00: 00-<32 hex>-<16 hex>-<2 hex>), so the
-- column can never hold anything else, and a malformed one never fails the write.
ALTER TABLE outbox ADD COLUMN traceparent text;
ALTER TABLE events ADD COLUMN traceparent text;

CREATE OR REPLACE FUNCTION carebase_write_meta() RETURNS trigger LANGUAGE plpgsql AS $$
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
    INSERT INTO outbox (tenant_id, type, resource_type, resource_id, version, patient_id, questionnaire_id, request_id, occurred_at, traceparent)
    VALUES (NEW.tenant_id, e ->> 'type', TG_ARGV[0], NEW.id::text, v, (e ->> 'patientId')::uuid,
      (e ->> 'questionnaireId')::uuid, e ->> 'requestId', (e ->> 'at')::timestamptz,
      CASE WHEN e ->> 'traceparent' ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN e ->> 'traceparent' END);
  END IF;
  NEW.write_meta := NULL;
  RETURN NEW;
END $$;

-- As in 0008, with the traceparent carried from the outbox row to the event row.
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
