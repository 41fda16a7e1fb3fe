-- A batch row also carries its records' ids and HMACs as arrays, in the records' order: what the
-- sealer reads (audit-trail.sql.ts, sealItems).
--
-- Sealing needs only each record's id and HMAC, but had to take them out of the records' JSON:
-- decompress the whole batch, split it into elements and lex each element twice. That was ~10 µs
-- of PostgreSQL CPU per record, two thirds of what a batched read record cost the database (the
-- insert ~5 µs; pg_stat_statements under cached reads, tenth session, bench/RESULTS.md). An array
-- of uuids and one of short texts are read for a fraction of that.
--
-- The arrays are a copy for sealing, never the evidence: verify reads the records themselves and
-- recomputes each seal's digest from them, so arrays that disagree with their records (changed
-- before sealing) make verify report the seal. Rows written before this migration have no arrays;
-- the sealer reads those from their records as before.
ALTER TABLE audit_event_batches
  ADD COLUMN record_ids uuid[],
  ADD COLUMN record_hmacs text[],
  ADD CONSTRAINT audit_event_batches_seal_columns_check CHECK (
    (record_ids IS NULL AND record_hmacs IS NULL)
    OR (cardinality(record_ids) = record_count AND cardinality(record_hmacs) = record_count)
  );
-- Stored out of line without compression: random ids and HMACs barely compress, and trying to
-- (pglz, the default) cost more than storing them.
ALTER TABLE audit_event_batches
  ALTER COLUMN record_ids SET STORAGE EXTERNAL,
  ALTER COLUMN record_hmacs SET STORAGE EXTERNAL;
-- A seal's list of record ids (up to a few thousand uuids) was compressed with pglz; lz4 where the
-- server has it, as for the batches' records (0010).
DO $$
BEGIN
  ALTER TABLE audit_seals ALTER COLUMN event_ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
