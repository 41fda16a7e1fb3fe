// Seals audit records, in order, into each tenant's hash chain (audit_chain; see chain.ts).
//
// Which records: those with no chain row yet ("unsealed"). Records do not commit in the order of
// their occurred_at (a write transaction, a batched read flush or a retried flush can land after
// later records were sealed), so a pass cannot just take "everything after the last sealed one".
// It anti-joins audit_events against audit_chain, limited to a window that starts `marginMs`
// before the last sealed record's occurred_at (so a late record is still found and sealed, at the
// chain's end) and ends `graceMs` before now (so a batch still committing is sealed whole, next
// pass). Within a pass records are sealed in (occurred_at, id) order, so the order is the same
// whichever instance seals. A record that lands later than the margin is not sealed: verify
// reports it ('unsealed'), which is what it should do with a record that appeared that late; an
// operator who has looked into it seals it with `carebase audit seal --include-late`.
// The background loop's regular passes use a window of only recentMarginMs (records a few seconds
// out of order) and sweep the whole margin every lateSweepMs, so a pass does not re-read minutes
// of sealed records each time.
// Records whose HMAC does not verify are never sealed (verify reports them as inserted).
//
// Who: every API instance runs the sealer for every tenant. A transaction-scoped advisory lock per
// tenant serializes them (the loser of a race skips that tenant this pass, or waits when asked),
// and positions are a primary key, so two sealers can never both append position n.
//
// As what: the application role with the tenant set, like every other write; it may INSERT into
// audit_chain but not UPDATE or DELETE it (migration 0005).
import { and, asc, desc, eq, gte, lte, notExists, sql } from 'drizzle-orm';
import type { Db, Querier } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { hmacMatches, type AuditKey } from './audit-record.js';
import { auditChain, auditEvents, type AuditChainRow, type AuditEventRow } from './audit.table.js';
import { chainHash, genesisOf, SEAL_DEFAULTS, sealLockName } from './chain.js';

export interface SealOptions {
  graceMs?: number;
  marginMs?: number;
  batch?: number;
  /** When another sealer holds this tenant, return at once (busy) instead of waiting for it. */
  skipIfBusy?: boolean;
}

export interface SealResult {
  /** Records appended to the chain by this call. */
  sealed: number;
  /** Records in the window whose HMAC does not verify under the key: left unsealed (verify reports them). */
  rejected: string[];
  /** Position of the chain's last link after this call (0: empty chain, or busy). */
  head: number;
  /** Another sealer held the tenant (only with skipIfBusy). */
  busy: boolean;
  /** The batch was full: more may be waiting. */
  more: boolean;
}

// Pages of candidates scanned per call at most (see sealTenant).
const MAX_PAGES = 10;

const rowsOf = <T>(r: unknown): T[] => (r as { rows: T[] }).rows;

/** The last link and when its record occurred (null when that record is gone: the chain was tampered with). */
async function lastLink(q: Querier, tenantId: string) {
  const [last] = await q
    .select({ position: auditChain.position, hash: auditChain.hash, sealedAt: auditChain.sealedAt, occurredAt: auditEvents.occurredAt })
    .from(auditChain)
    .leftJoin(auditEvents, and(eq(auditEvents.tenantId, auditChain.tenantId), eq(auditEvents.id, auditChain.eventId)))
    .where(eq(auditChain.tenantId, tenantId))
    .orderBy(desc(auditChain.position))
    .limit(1);
  return last;
}

/** Appends the tenant's unsealed records (see the file comment for which) to its chain, in one transaction. */
export async function sealTenant(db: Db, key: AuditKey, tenantId: string, now: Date, o: SealOptions = {}): Promise<SealResult> {
  const graceMs = o.graceMs ?? SEAL_DEFAULTS.graceMs;
  const marginMs = o.marginMs ?? SEAL_DEFAULTS.marginMs;
  const batch = o.batch ?? SEAL_DEFAULTS.batch;
  return db.tx(tenantId, async (q) => {
    const lockName = sealLockName(tenantId);
    if (o.skipIfBusy) {
      const [got] = rowsOf<{ ok: boolean }>(await q.execute(sql`select pg_try_advisory_xact_lock(hashtextextended(${lockName}, 0)) as ok`));
      if (!got?.ok) return { sealed: 0, rejected: [], head: 0, busy: true, more: false };
    } else {
      await q.execute(sql`select pg_advisory_xact_lock(hashtextextended(${lockName}, 0))`);
    }
    const last = await lastLink(q, tenantId);
    // Should the last link's record be gone, its seal time still bounds when it occurred (a record
    // is sealed at least graceMs after it occurred), so the window stays as wide as intended.
    const base = last ? (last.occurredAt ?? new Date(last.sealedAt.getTime() - graceMs)) : undefined;
    // An infinite margin (`carebase audit seal --include-late`) takes every unsealed record.
    const from = base && Number.isFinite(marginMs) ? new Date(base.getTime() - marginMs) : undefined;
    const until = new Date(now.getTime() - graceMs);
    // Keyset pages over the window, so rows left unsealed below (forged ones) cannot stall the
    // records behind them; a bounded number of pages per call keeps a transaction short.
    const authentic: AuditEventRow[] = [];
    const rejected: string[] = [];
    // Timestamps come back in milliseconds while the column keeps microseconds, so a page may
    // repeat a row of the previous one (only a hand-made row has microseconds): seen ids are skipped.
    const seen = new Set<string>();
    let after: AuditEventRow | undefined;
    let full = false;
    for (let page = 0; page < MAX_PAGES && authentic.length < batch; page++) {
      const want = batch - authentic.length;
      const rows = await q
        .select()
        .from(auditEvents)
        .where(
          and(
            eq(auditEvents.tenantId, tenantId),
            from ? gte(auditEvents.occurredAt, from) : undefined,
            lte(auditEvents.occurredAt, until),
            after ? sql`(${auditEvents.occurredAt}, ${auditEvents.id}) > (${after.occurredAt.toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
            notExists(
              q
                .select({ one: sql`1` })
                .from(auditChain)
                .where(and(eq(auditChain.tenantId, auditEvents.tenantId), eq(auditChain.eventId, auditEvents.id))),
            ),
          ),
        )
        .orderBy(asc(auditEvents.occurredAt), asc(auditEvents.id))
        .limit(want);
      // Only records the application signed are sealed: a row someone put into the table without
      // the key stays outside the chain, where verify reports it as inserted.
      for (const e of rows) {
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        if (e.keyId === key.id && hmacMatches(key, e)) authentic.push(e);
        else rejected.push(e.id);
      }
      full = rows.length === want;
      after = rows.at(-1);
      if (!full) break;
    }

    let position = last?.position ?? 0;
    let prev = last?.hash ?? genesisOf(tenantId);
    const links: AuditChainRow[] = authentic.map((e) => {
      position += 1;
      prev = chainHash(key, prev, position, e.id, e.hmac);
      return { tenantId, position, eventId: e.id, eventHmac: e.hmac, hash: prev, sealedAt: now };
    });
    if (links.length > 0) await q.insert(auditChain).values(links);
    return { sealed: links.length, rejected, head: position, busy: false, more: full };
  });
}

export interface TenantList {
  ids: string[];
  /**
   * False when the owner session is subject to row-level security (neither superuser nor
   * BYPASSRLS: tenants is FORCE ROW LEVEL SECURITY, so it sees no tenant at all).
   */
  complete: boolean;
}

/**
 * Every tenant. The application role sees only the tenant it is scoped to (migration 0001), so
 * this reads as the owner; that sees every tenant when it is a superuser (always on PGlite) or has
 * BYPASSRLS.
 */
export async function listTenantIds(db: Db): Promise<TenantList> {
  return db.withOwner(async (s) => {
    const [me] = await s.query<{ can: boolean }>('select (rolsuper or rolbypassrls) as can from pg_roles where rolname = current_user');
    const rows = await s.query<{ id: string }>('select id from tenants order by id');
    return { ids: rows.map((r) => r.id), complete: me?.can === true };
  });
}

/** Whether the tenant is provisioned (read as the application role scoped to it, which sees exactly that row). */
export async function tenantExists(db: Db, tenantId: string): Promise<boolean> {
  const r = await db.read(tenantId, (q) => q.execute(sql`select 1 from tenants where id = ${tenantId}`));
  return rowsOf(r).length > 0;
}

export interface AuditSealerDeps {
  db: Db;
  key: AuditKey;
  now?: () => Date;
}

export interface AuditSealerOptions extends Omit<SealOptions, 'skipIfBusy'> {
  /** How often the tenant list is re-read (an owner connection each time on PostgreSQL). */
  tenantsRefreshMs?: number;
  /** Full batches sealed for one tenant per pass before moving on (a backlog is finished next pass). */
  maxBatchesPerTenant?: number;
  /** The tenants to seal (default: every tenant, via listTenantIds); tests narrow it to their own. */
  listTenants?: () => Promise<TenantList>;
}

/**
 * Seals every tenant's records every intervalMs (first pass after one interval). Passes never
 * overlap; a failed pass or tenant is logged (ids and error codes only, never record contents)
 * and retried next pass. stop() ends the timer and waits for a pass in progress, so the caller
 * may close the database afterwards.
 */
export function startAuditSealer(deps: AuditSealerDeps, log: Logger, intervalMs = 5_000, o: AuditSealerOptions = {}): () => Promise<void> {
  const now = deps.now ?? (() => new Date());
  const refreshMs = o.tenantsRefreshMs ?? 60_000;
  const maxBatches = o.maxBatchesPerTenant ?? 10;
  let tenants: string[] = [];
  let listedAt = -Infinity;
  let warnedIncomplete = false;
  const reported = new Set<string>();
  let stopped = false;
  let lastSweep = -Infinity; // the first pass sweeps the whole margin (late records of a previous run)
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  async function refreshTenants(): Promise<void> {
    if (Date.now() - listedAt < refreshMs) return;
    const list = await (o.listTenants ?? (() => listTenantIds(deps.db)))();
    tenants = list.ids;
    listedAt = Date.now();
    if (!list.complete && !warnedIncomplete) {
      warnedIncomplete = true;
      log.warn('audit sealer: the database role can list no tenants under row-level security (not superuser, no BYPASSRLS); records will not be sealed');
    }
  }

  async function pass(): Promise<void> {
    try {
      await refreshTenants();
    } catch (err) {
      log.warn({ err }, 'audit sealer: listing tenants failed; retrying next pass');
      return;
    }
    const sweep = Date.now() - lastSweep >= SEAL_DEFAULTS.lateSweepMs;
    if (sweep) lastSweep = Date.now();
    const marginMs = sweep ? (o.marginMs ?? SEAL_DEFAULTS.marginMs) : Math.min(o.marginMs ?? Infinity, SEAL_DEFAULTS.recentMarginMs);
    for (const tenant of tenants) {
      for (let i = 0; i < maxBatches && !stopped; i++) {
        try {
          const r = await sealTenant(deps.db, deps.key, tenant, now(), { ...o, marginMs, skipIfBusy: true });
          const fresh = r.rejected.filter((id) => !reported.has(id));
          if (fresh.length > 0) {
            // Once per record and process: such a record is met again on every pass in its window.
            if (reported.size > 10_000) reported.clear();
            for (const id of fresh) reported.add(id);
            log.warn({ tenant, events: fresh.slice(0, 20), count: fresh.length }, 'audit sealer: records whose HMAC does not verify were left unsealed');
          }
          if (r.sealed > 0) log.debug({ tenant, sealed: r.sealed, head: r.head }, 'audit records sealed');
          if (!r.more) break;
        } catch (err) {
          log.warn({ err, tenant }, 'audit sealing failed; retrying next pass');
          break;
        }
      }
      if (stopped) return;
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass().finally(schedule);
    }, intervalMs);
    timer.unref();
  }
  schedule();

  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
