// The per-tenant chain of audit seals (audit_seals, migration 0009), shared by the sealer and verify.
//
// A seal covers the tenant's records written by transactions in [from, to): it lists their ids in
// (txid, id) order and commits to their HMACs through `digest` = SHA-256 over "id:hmac\n" lines.
// Its hash is HMAC-SHA256(key, previous hash | position | from | to | count | digest): keyed, so
// someone who can write the tables but does not hold the key cannot rebuild a consistent chain
// after tampering; it commits to its position (a moved seal breaks) and to its predecessor (a
// removed or inserted seal breaks the one after it).
import { createHash } from 'node:crypto';
import { hmacOf, type AuditKey } from './audit-record.js';

/** Seal 0's "hash": per tenant, so a chain copied from one tenant to another does not verify. */
export const genesisOf = (tenantId: string) => `carebase-audit-genesis:${tenantId}`;

/** Where the first seal starts: below every transaction id. */
export const FIRST_TXID = '0';

export interface SealContent {
  position: number;
  fromTxid: string;
  toTxid: string;
  /** The records' ids and HMACs, in (txid, id) order. */
  records: readonly { id: string; hmac: string }[];
}

export function digestOf(records: readonly { id: string; hmac: string }[]): string {
  const h = createHash('sha256');
  for (const r of records) h.update(`${r.id}:${r.hmac}\n`);
  return h.digest('base64url');
}

export function sealHash(key: AuditKey, prevHash: string, s: Omit<SealContent, 'records'> & { count: number; digest: string }): string {
  return hmacOf(key, `${prevHash}|${s.position}|${s.fromTxid}|${s.toTxid}|${s.count}|${s.digest}`);
}

/** Serializes sealers of one tenant across transactions and processes (pg_advisory_xact_lock key). */
export const sealLockName = (tenantId: string) => `carebase.audit-seal:${tenantId}`;

/** Records per seal at most (a transaction's records are never split, so a seal may hold more). */
export const SEAL_BATCH = 5_000;
