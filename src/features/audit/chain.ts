// The per-tenant hash chain over audit records (audit_chain), shared by the sealer and verify.
//
// Link n is HMAC-SHA256(key, hash(n-1) | n | event id | event HMAC). Keyed rather than a plain
// hash: with a plain hash anyone who can write the table could rebuild a consistent chain after
// tampering; with the key (held outside the database, like the records' own HMAC) they cannot.
// Each link commits to its position, so moving a row to another position breaks it, and to its
// predecessor, so removing or inserting a row breaks the link after it.
import { hmacOf, type AuditKey } from './audit-record.js';

/** Link 0's "hash": per tenant, so a chain copied from one tenant to another does not verify. */
export const genesisOf = (tenantId: string) => `carebase-audit-genesis:${tenantId}`;

export function chainHash(key: AuditKey, prevHash: string, position: number, eventId: string, eventHmac: string): string {
  return hmacOf(key, `${prevHash}|${position}|${eventId}|${eventHmac}`);
}

/** Sealing timings shared by the sealer (what it picks up) and verify (what it expects sealed). */
export const SEAL_DEFAULTS = {
  /**
   * Records younger than this are left for the next pass: their siblings from the same batch or
   * transaction may not have committed yet, and sealing in (occurred_at, id) order is most useful
   * when what is sealed is complete up to that point.
   */
  graceMs: 2_000,
  /**
   * How far before the last sealed record the sealer still looks for unsealed ones. Records
   * commit out of order — a write transaction, a batched read flush, or a flush retried while the
   * database was unreachable lands after later records were sealed — and such a late record is
   * still sealed (at the chain's end) if it is at most this much older than the last sealed one.
   * Bounds each pass's anti-join to a recent window instead of the whole table.
   */
  marginMs: 10 * 60_000,
  /**
   * The window of the background sealer's regular passes: records that commit at most this much
   * out of order. Each pass anti-joins every record in its window against the chain, so a window
   * of marginMs on every pass re-read minutes of already-sealed records every few seconds (most
   * of PostgreSQL's share of auditing under load); the full margin is swept every lateSweepMs.
   */
  recentMarginMs: 5_000,
  lateSweepMs: 60_000,
  /** Records sealed per transaction; a pass repeats while batches are full. */
  batch: 1_000,
} as const;

/** Serializes sealers of one tenant across transactions and processes (pg_advisory_xact_lock key). */
export const sealLockName = (tenantId: string) => `carebase.audit-seal:${tenantId}`;
