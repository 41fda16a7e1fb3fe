-- A batch's records are stored as json (the text as sent, checked to be JSON), no longer as jsonb.
--
-- Building jsonb from a flush's text (up to 1,000 records, ~300 KB) cost PostgreSQL ~10 µs per
-- record, json ~2 µs; with cached reads at saturation the cores are the limit, and the difference
-- was ~6 % of read throughput (bench/RESULTS.md, seventh session). The records are written once and read
-- rarely (sealing reads each record's id and HMAC once; searches, exports and verify read
-- batches of the records they look for), and the json functions read the same elements as the
-- jsonb ones did.
DROP VIEW audit_trail;
DROP FUNCTION carebase_audit_batch_records(jsonb);
ALTER TABLE audit_event_batches DROP CONSTRAINT audit_event_batches_records_check;
ALTER TABLE audit_event_batches ALTER COLUMN records TYPE json USING records::json;
ALTER TABLE audit_event_batches ADD CONSTRAINT audit_event_batches_records_check CHECK (json_typeof(records) = 'array');
-- The column's type changed: set its compression again where the server has lz4 (see 0010).
DO $$
BEGIN
  ALTER TABLE audit_event_batches ALTER COLUMN records SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;

-- As in 0010, on json. `detail` stays jsonb in the rows (as audit_events' column is); a JSON null
-- there is SQL NULL.
CREATE FUNCTION carebase_audit_batch_records(records json)
RETURNS TABLE (tenant_id text, id uuid, occurred_at timestamptz, actor_sub text, actor_roles text[], action text,
  resource_type text, resource_id text, patient_id uuid, outcome text, request_id text, client_ip text, user_agent text,
  detail jsonb, key_id text, hmac text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT a->>0, (a->>1)::uuid, (a->>2)::timestamptz, a->>3, ARRAY(SELECT json_array_elements_text(a->4)), a->>5,
    a->>6, a->>7, (a->>8)::uuid, a->>9, a->>10, a->>11, a->>12,
    CASE WHEN json_typeof(a->13) = 'null' THEN NULL ELSE (a->13)::jsonb END, a->>14, a->>15
  FROM json_array_elements(records) AS x(a)
$$;

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
