// Verifies a tenant's audit trail: walks audit_chain by position, recomputing every link and every
// record's HMAC, then checks the records not (yet) in the chain. Read-only; reports the FIRST
// problem found, in chain order, then unsealed records in (occurred_at, id) order.
//
//   altered    a sealed record's fields no longer match its HMAC, its HMAC differs from the one
//              sealed, or it was signed with another key
//   removed    a link's record is gone, a position is missing, or the chain ends before a head
//              recorded earlier (--head)
//   reordered  a link sits at another position than the one it was sealed at
//   inserted   a link that was never sealed by the application points at a record that was never
//              signed by it, or an unsealed record whose HMAC does not verify
//   bad-chain  a link does not recompute and none of the above explains it (its row was edited,
//              or a link was removed and the rest renumbered), or differs from a recorded head
//   unsealed   a record the sealer will never seal: authentic, but older than the sealer's window
//              (it landed more than the sealing margin after records sealed before it)
//
// What it cannot see on its own: the chain's tail cut off together with (or without) its records
// looks like a shorter, valid chain. Keep the head printed by `carebase audit verify` somewhere the
// database's operators cannot write, and pass it back with --head to catch that.
import { and, asc, eq, gt, notExists, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/db.js';
import { hmacMatches, type AuditKey } from './audit-record.js';
import { auditChain, auditEvents, type AuditChainRow, type AuditEventRow } from './audit.table.js';
import { chainHash, genesisOf, SEAL_DEFAULTS } from './chain.js';

export type AuditProblem = 'altered' | 'removed' | 'inserted' | 'reordered' | 'unsealed' | 'bad-chain';

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
      /** Authentic records not sealed yet, within the sealer's window (the server seals them continuously). */
      pending: number;
      /** The last link (null: empty chain); record it outside the database to detect a cut-off tail later. */
      head: ChainHead | null;
    }
  | {
      ok: false;
      tenantId: string;
      problem: AuditProblem;
      position?: number;
      eventId?: string;
      message: string;
      /** Records found intact before the problem. */
      checked: number;
    };

export interface VerifyOptions {
  /** A head recorded earlier: the chain must still hold this link. */
  head?: ChainHead;
  /** The sealer's margin (see chain.ts); records older than the window it implies should be sealed. */
  marginMs?: number;
  /** Rows read per query. */
  pageSize?: number;
}

type Problem = Omit<Extract<VerifyResult, { ok: false }>, 'ok' | 'tenantId' | 'checked'>;

/** What is wrong with a sealed record, if anything. */
function recordProblem(key: AuditKey, link: AuditChainRow, e: AuditEventRow | null): Problem | undefined {
  const at = { position: link.position, eventId: link.eventId };
  if (!e) return { problem: 'removed', ...at, message: `the record sealed at position ${link.position} is gone` };
  if (e.hmac !== link.eventHmac) return { problem: 'altered', ...at, message: `the record at position ${link.position} carries another HMAC than the one sealed` };
  if (e.keyId !== key.id) return { problem: 'altered', ...at, message: `the record at position ${link.position} is signed with key ${e.keyId}, not the verification key ${key.id}` };
  if (!hmacMatches(key, e)) return { problem: 'altered', ...at, message: `the record at position ${link.position} no longer matches its HMAC` };
  return undefined;
}

export async function verifyTenant(db: Db, key: AuditKey, tenantId: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  const pageSize = o.pageSize ?? 1000;
  const marginMs = o.marginMs ?? SEAL_DEFAULTS.marginMs;
  let checked = 0;
  const fail = (p: Problem): VerifyResult => ({ ok: false, tenantId, checked, ...p });

  const chainPage = (afterPosition: number) =>
    db.read(tenantId, (q) =>
      q
        .select()
        .from(auditChain)
        .leftJoin(auditEvents, and(eq(auditEvents.tenantId, auditChain.tenantId), eq(auditEvents.id, auditChain.eventId)))
        .where(and(eq(auditChain.tenantId, tenantId), gt(auditChain.position, afterPosition)))
        .orderBy(asc(auditChain.position))
        .limit(pageSize),
    );

  /**
   * A link that does not recompute at `position`: is the link sealed there elsewhere in the
   * chain? Only called on failure, so reading the rest of the chain again is affordable.
   */
  async function movedFrom(position: number, prevHash: string): Promise<number | undefined> {
    for (let after = 0; ; ) {
      const rows = await chainPage(after);
      for (const { audit_chain: c } of rows) {
        if (c.position !== position && chainHash(key, prevHash, position, c.eventId, c.eventHmac) === c.hash) return c.position;
      }
      if (rows.length < pageSize) return undefined;
      after = rows.at(-1)!.audit_chain.position;
    }
  }

  let prevHash = genesisOf(tenantId);
  let expected = 1;
  let lastOccurredAt: Date | undefined;
  for (;;) {
    const rows = await chainPage(expected - 1);
    for (const { audit_chain: c, audit_events: e } of rows) {
      if (c.position !== expected) {
        return fail({ problem: 'removed', position: expected, message: `chain position ${expected} is missing (next is ${c.position})` });
      }
      if (chainHash(key, prevHash, c.position, c.eventId, c.eventHmac) !== c.hash) {
        // A record the application never signed behind a link that does not recompute: both were
        // put there (shifting the links after them, if it was spliced in).
        if (recordProblem(key, c, e)) {
          return fail({ problem: 'inserted', position: c.position, eventId: c.eventId, message: `position ${c.position} holds a link and record the application never sealed nor signed` });
        }
        const from = await movedFrom(c.position, prevHash);
        if (from !== undefined) {
          return fail({ problem: 'reordered', position: c.position, eventId: c.eventId, message: `the link sealed at position ${c.position} is now at position ${from}` });
        }
        return fail({ problem: 'bad-chain', position: c.position, eventId: c.eventId, message: `the link at position ${c.position} does not recompute` });
      }
      const p = recordProblem(key, c, e);
      if (p) return fail(p);
      if (o.head && c.position === o.head.position && c.hash !== o.head.hash) {
        return fail({ problem: 'bad-chain', position: c.position, eventId: c.eventId, message: `the link at position ${c.position} differs from the recorded head` });
      }
      checked++;
      prevHash = c.hash;
      expected++;
      lastOccurredAt = e!.occurredAt;
    }
    if (rows.length < pageSize) break;
  }
  const sealed = expected - 1;
  if (o.head && o.head.position > sealed) {
    return fail({ problem: 'removed', position: sealed + 1, message: `the chain ends at position ${sealed}, before the recorded head at position ${o.head.position}: its tail was removed` });
  }

  // Records with no link. The sealer looks no further back than marginMs before the last sealed
  // record, so an authentic record older than that will never be sealed.
  const windowStart = lastOccurredAt ? lastOccurredAt.getTime() - marginMs : -Infinity;
  let pending = 0;
  let after: AuditEventRow | undefined;
  const seen = new Set<string>();
  for (;;) {
    const rows = await db.read(tenantId, (q) =>
      q
        .select()
        .from(auditEvents)
        .where(
          and(
            eq(auditEvents.tenantId, tenantId),
            after ? sql`(${auditEvents.occurredAt}, ${auditEvents.id}) >= (${after.occurredAt.toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
            notExists(
              q
                .select({ one: sql`1` })
                .from(auditChain)
                .where(and(eq(auditChain.tenantId, auditEvents.tenantId), eq(auditChain.eventId, auditEvents.id))),
            ),
          ),
        )
        .orderBy(asc(auditEvents.occurredAt), asc(auditEvents.id))
        .limit(pageSize),
    );
    let fresh = 0;
    for (const e of rows) {
      // Milliseconds come back where the column may hold microseconds (a hand-made row), so the
      // keyset above is inclusive and rows already seen are skipped.
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      fresh++;
      if (e.keyId !== key.id || !hmacMatches(key, e)) {
        return fail({ problem: 'inserted', eventId: e.id, message: `unsealed record ${e.id} was not signed by the application (its HMAC does not verify)` });
      }
      if (e.occurredAt.getTime() < windowStart) {
        return fail({ problem: 'unsealed', eventId: e.id, message: `record ${e.id} was never sealed, though it is older than the sealer's window` });
      }
      pending++;
      checked++;
    }
    if (rows.length < pageSize || fresh === 0) break;
    after = rows.at(-1);
  }
  return { ok: true, tenantId, checked, sealed, pending, head: sealed > 0 ? { position: sealed, hash: prevHash } : null };
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
