// Verifies a tenant's audit trail (audit_events rows and the records of audit_event_batches rows
// alike): walks audit_seals by position, recomputing every seal's hash,
// checking that each seal's range starts where the previous one ended, that the records in its
// range are exactly the ones it lists, in order, and that every record matches its HMAC; then
// checks the records not sealed yet. Read-only; reports the FIRST problem found, in chain order.
//
//   altered    a sealed record's fields no longer match its HMAC (changed, or forged and sealed
//              before verify saw it: the sealer does not judge records), or it claims another key,
//              or its HMAC is not the one sealed
//   removed    a sealed record is gone, a seal is missing, or the chain ends before a head recorded
//              earlier (--head)
//   reordered  a seal sits at another position than the one it was sealed at, or a sealed record
//              now lies in another seal's range
//   inserted   a record in a sealed range that its seal does not list, or any record whose HMAC
//              does not verify (it was not signed by the application)
//   bad-chain  a seal does not recompute and none of the above explains it (its row was edited, or
//              a seal was removed and the rest renumbered), leaves a gap or overlap between
//              ranges, or differs from a recorded head
//
// What it cannot see on its own: the chain's tail cut off together with (or without) its records
// looks like a shorter, valid chain. Keep the head printed by `carebase audit verify` somewhere the
// database's operators cannot write, and pass it back with --head to catch that.
import { and, asc, eq, gt } from 'drizzle-orm';
import type { Db } from '../../platform/db/db.js';
import { hmacMatches, type AuditKey } from './audit-record.js';
import { auditSeals, type AuditEventRow, type AuditSealRow } from './audit.table.js';
import { recordExists, recordsByTxid } from './audit-trail.sql.js';
import { digestOf, FIRST_TXID, genesisOf, sealHash } from './chain.js';

export type AuditProblem = 'altered' | 'removed' | 'inserted' | 'reordered' | 'bad-chain';

export interface ChainHead {
  position: number;
  hash: string;
}

export type VerifyResult =
  | {
      ok: true;
      tenantId: string;
      /** Records checked: sealed plus pending. */
      checked: number;
      sealed: number;
      /** Authentic records not sealed yet (their transactions ended after the last seal; the server seals them continuously). */
      pending: number;
      /** The last seal (null: empty chain); record it outside the database to detect a cut-off tail later. */
      head: ChainHead | null;
    }
  | {
      ok: false;
      tenantId: string;
      problem: AuditProblem;
      /** The seal's position. */
      position?: number;
      eventId?: string;
      message: string;
      /** Records found intact before the problem. */
      checked: number;
    };

export interface VerifyOptions {
  /** A head recorded earlier: the chain must still hold this seal. */
  head?: ChainHead;
  /** Seals read per query. */
  pageSize?: number;
}

type Problem = Omit<Extract<VerifyResult, { ok: false }>, 'ok' | 'tenantId' | 'checked'>;

const authentic = (key: AuditKey, e: AuditEventRow) => e.keyId === key.id && hmacMatches(key, e);

function recordProblem(key: AuditKey, position: number, e: AuditEventRow): Problem | undefined {
  const at = { position, eventId: e.id };
  if (e.keyId !== key.id) return { problem: 'altered', ...at, message: `record ${e.id} (seal ${position}) is signed with key ${e.keyId}, not the verification key ${key.id}` };
  if (!hmacMatches(key, e)) return { problem: 'altered', ...at, message: `record ${e.id} (seal ${position}) no longer matches its HMAC` };
  return undefined;
}

export async function verifyTenant(db: Db, key: AuditKey, tenantId: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  const pageSize = o.pageSize ?? 50;
  let checked = 0;
  const fail = (p: Problem): VerifyResult => ({ ok: false, tenantId, checked, ...p });

  const sealPage = (afterPosition: number) =>
    db.read(tenantId, (q) =>
      q.select().from(auditSeals).where(and(eq(auditSeals.tenantId, tenantId), gt(auditSeals.position, afterPosition))).orderBy(asc(auditSeals.position)).limit(pageSize),
    );
  const recordsIn = (from: string, to?: string) => db.read(tenantId, (q) => recordsByTxid(q, tenantId, from, to));
  const exists = (id: string) => db.read(tenantId, (q) => recordExists(q, tenantId, id));

  /** A seal that does not recompute at `position`: was the seal made for this position moved elsewhere? */
  async function movedFrom(position: number, prevHash: string): Promise<number | undefined> {
    for (let after = 0; ; ) {
      const rows = await sealPage(after);
      for (const c of rows) {
        if (c.position !== position && hashAt(c, position, prevHash) === c.hash) return c.position;
      }
      if (rows.length < pageSize) return undefined;
      after = rows.at(-1)!.position;
    }
  }
  const hashAt = (c: AuditSealRow, position: number, prevHash: string) =>
    sealHash(key, prevHash, { position, fromTxid: c.fromTxid, toTxid: c.toTxid, count: c.eventIds.length, digest: c.digest });

  /** What is wrong with the records of seal `c`, if anything. */
  async function rangeProblem(c: AuditSealRow): Promise<Problem | undefined> {
    const records = await recordsIn(c.fromTxid, c.toTxid);
    const listed = new Set(c.eventIds);
    const present = new Set(records.map((e) => e.id));
    for (const id of c.eventIds) {
      if (present.has(id)) continue;
      return (await exists(id))
        ? { problem: 'reordered', position: c.position, eventId: id, message: `record ${id}, sealed in seal ${c.position}, now lies outside that seal's range` }
        : { problem: 'removed', position: c.position, eventId: id, message: `record ${id}, sealed in seal ${c.position}, is gone` };
    }
    for (const e of records) {
      if (listed.has(e.id)) continue;
      return authentic(key, e)
        ? { problem: 'reordered', position: c.position, eventId: e.id, message: `record ${e.id} lies in the range of seal ${c.position}, which does not list it (it was moved there)` }
        : { problem: 'inserted', position: c.position, eventId: e.id, message: `record ${e.id} in the range of seal ${c.position} was never sealed nor signed by the application` };
    }
    for (const [i, e] of records.entries()) {
      if (e.id !== c.eventIds[i]) return { problem: 'reordered', position: c.position, eventId: e.id, message: `record ${e.id} is no longer where seal ${c.position} put it` };
      const p = recordProblem(key, c.position, e);
      if (p) return p;
    }
    if (digestOf(records) !== c.digest) return { problem: 'altered', position: c.position, message: `the records of seal ${c.position} carry other HMACs than the ones sealed` };
    return undefined;
  }

  let prevHash = genesisOf(tenantId);
  let prevTo = FIRST_TXID;
  let expected = 1;
  for (;;) {
    const rows = await sealPage(expected - 1);
    for (const c of rows) {
      if (c.position !== expected) {
        return fail({ problem: 'removed', position: expected, message: `seal ${expected} is missing (next is ${c.position})` });
      }
      if (hashAt(c, c.position, prevHash) !== c.hash) {
        // A seal that does not recompute over a record the application never signed: both were put there.
        const forged = (await recordsIn(c.fromTxid, c.toTxid)).find((e) => !authentic(key, e));
        if (forged) return fail({ problem: 'inserted', position: c.position, eventId: forged.id, message: `seal ${c.position} and record ${forged.id} were never sealed nor signed by the application` });
        const from = await movedFrom(c.position, prevHash);
        if (from !== undefined) return fail({ problem: 'reordered', position: c.position, message: `the seal made for position ${c.position} is now at position ${from}` });
        return fail({ problem: 'bad-chain', position: c.position, message: `seal ${c.position} does not recompute` });
      }
      if (c.fromTxid !== prevTo) {
        return fail({ problem: 'bad-chain', position: c.position, message: `seal ${c.position} starts at transaction ${c.fromTxid}, not where seal ${c.position - 1} ended (${prevTo})` });
      }
      const p = await rangeProblem(c);
      if (p) return fail(p);
      if (o.head && c.position === o.head.position && c.hash !== o.head.hash) {
        return fail({ problem: 'bad-chain', position: c.position, message: `seal ${c.position} differs from the recorded head` });
      }
      checked += c.eventIds.length;
      prevHash = c.hash;
      prevTo = c.toTxid;
      expected++;
    }
    if (rows.length < pageSize) break;
  }
  const seals = expected - 1;
  if (o.head && o.head.position > seals) {
    return fail({ problem: 'removed', position: seals + 1, message: `the chain ends at seal ${seals}, before the recorded head at seal ${o.head.position}: its tail was removed` });
  }
  const sealed = checked;

  // Records after the last seal's range: not sealed yet. Each must still be authentic.
  let pending = 0;
  for (const e of await recordsIn(prevTo)) {
    if (!authentic(key, e)) return fail({ problem: 'inserted', eventId: e.id, message: `unsealed record ${e.id} was not signed by the application (its HMAC does not verify)` });
    pending++;
    checked++;
  }
  return { ok: true, tenantId, checked, sealed, pending, head: seals > 0 ? { position: seals, hash: prevHash } : null };
}

/** One line for the operator: ids, positions and key ids only, never record contents. */
export function describeResult(r: VerifyResult): string {
  if (r.ok) {
    const head = r.head ? `head ${r.head.position}:${r.head.hash}` : 'empty chain';
    return `ok ${r.tenantId}: ${r.sealed} sealed records verified, ${r.pending} pending; ${head}`;
  }
  const where = [r.position !== undefined ? `position ${r.position}` : undefined, r.eventId ? `event ${r.eventId}` : undefined].filter(Boolean).join(', ');
  return `FAIL ${r.tenantId}: ${r.problem}${where ? ` at ${where}` : ''}: ${r.message} (${r.checked} records intact before it)`;
}

/** Parses `<position>:<hash>` as printed by describeResult; undefined when malformed. */
export function parseHead(text: string): ChainHead | undefined {
  const m = /^(\d{1,15}):([A-Za-z0-9_-]{20,})$/.exec(text);
  return m && Number(m[1]) > 0 ? { position: Number(m[1]), hash: m[2]! } : undefined;
}
