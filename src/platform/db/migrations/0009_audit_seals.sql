-- Audit sealing by transaction ranges instead of one chain row per record.
--
-- 0005 sealed each record with its own audit_chain row, found by anti-joining audit_events
-- against audit_chain over a time window (records commit out of time order). Per audited read
-- that was a second row and two more index entries, plus a re-read, which was most of what
-- auditing cost the database. Now:
--
-- - Each record carries the id of the transaction that wrote it (txid, set by the database).
-- - A seal covers every record of a tenant whose txid lies in [from_txid, to_txid), where to_txid
--   is at most the oldest transaction still running: every transaction in the range has ended,
--   so no record can appear in it later (except by tampering). The next seal starts where the
--   previous one ended, so the ranges tile the whole history without gaps.
-- - A seal lists its records' ids in (txid, id) order and commits to their HMACs through a digest;
--   its hash chains it to the previous seal (HMAC-keyed, like the records).
--
-- A record that commits late is simply in a later range: there is no margin to miss it by.
ALTER TABLE audit_events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_events_txid_idx ON audit_events (tenant_id, txid, id);
-- Time ranges use the primary key: an id is a UUIDv7 of the record's occurred_at (to the millisecond).
DROP INDEX audit_events_time_idx;

CREATE TABLE audit_seals (
  tenant_id text NOT NULL REFERENCES tenants (id),
  position bigint NOT NULL CHECK (position > 0),
  from_txid xid8 NOT NULL,
  to_txid xid8 NOT NULL,
  event_ids uuid[] NOT NULL,
  digest text NOT NULL,
  hash text NOT NULL,
  sealed_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, position)
);
CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit_seals
  FOR EACH ROW EXECUTE FUNCTION carebase_append_only();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals
  FOR EACH STATEMENT EXECUTE FUNCTION carebase_append_only();
ALTER TABLE audit_seals ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_seals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_seals
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON audit_seals TO carebase_app;

-- The per-record chain is replaced: records it sealed are sealed again by the first range seal
-- (txid of this migration). Verify a trail with the previous version before upgrading if it
-- predates this migration and must be proven untouched up to now.
DROP TABLE audit_chain;
