// Seals audit records into each tenant's chain of seals (audit_seals; see chain.ts and migration
// 0009).
//
// Which records: those written by transactions that have ended since the last seal. A seal takes
// the tenant's records whose txid is in [last seal's to_txid, horizon), where the horizon is the
// oldest transaction still running: below it every transaction has committed or rolled back, so
// the range is complete and stays so. A transaction that commits late is simply in a later range;
// nothing is missed and nothing needs a look-back window. The sealer does not check HMACs (verify
// does): a forged row is sealed like any other and reported by verify.
//
// Who: the audit.seal job (src/jobs), every AUDIT_SEAL_INTERVAL_MS, for every tenant: once per
// interval for the deployment with BullMQ, in each process without Redis; `carebase audit seal`
// too. A transaction-scoped advisory lock per tenant serializes concurrent sealers (the loser of a
// race skips that tenant this pass, or waits when asked), and positions are a primary key, so two
// sealers can never both append position n.
//
// As what: the application role with the tenant set, like every other write; it may INSERT into
// audit_seals but not UPDATE or DELETE it.
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import type { AuditKey } from './audit-record.js';
import { insertSeal, sealDigest, sealExtent } from './audit-trail.sql.js';
import { FIRST_TXID, genesisOf, SEAL_BATCH, sealHash, sealLockName } from './chain.js';

export interface SealOptions {
  /** Records per seal (a transaction's records are never split across seals). */
  batch?: number;
  /** When another sealer holds this tenant, return at once (busy) instead of waiting for it. */
  skipIfBusy?: boolean;
}

export interface SealResult {
  /** Records sealed by this call. */
  sealed: number;
  /** Position of the chain's last seal after this call (0: empty chain, or busy). */
  head: number;
  /** Another sealer held the tenant (only with skipIfBusy). */
  busy: boolean;
  /** The batch was full: more may be waiting. */
  more: boolean;
}

/** Seals the tenant's records of ended transactions since the last seal (at most about `batch`), in one transaction. */
export async function sealTenant(db: Db, key: AuditKey, tenantId: string, now: Date, o: SealOptions = {}): Promise<SealResult> {
  const batch = o.batch ?? SEAL_BATCH;
  return db.tx(tenantId, async (q) => {
    const lockName = sealLockName(tenantId);
    if (o.skipIfBusy) {
      const [got] = rowsOf<{ ok: boolean }>(await q.execute(sql`select pg_try_advisory_xact_lock(hashtextextended(${lockName}, 0)) as ok`));
      if (!got?.ok) return { sealed: 0, head: 0, busy: true, more: false };
    } else {
      await q.execute(sql`select pg_advisory_xact_lock(hashtextextended(${lockName}, 0))`);
    }
    const [last] = rowsOf<{ position: string; hash: string; to_txid: string }>(
      await q.execute(sql`select position::text as position, hash, to_txid::text as to_txid from audit_seals where tenant_id = ${tenantId} order by audit_seals.position desc limit 1`),
    );
    const [{ horizon } = { horizon: FIRST_TXID }] = rowsOf<{ horizon: string }>(await q.execute(sql`select pg_snapshot_xmin(pg_current_snapshot())::text as horizon`));
    const head = Number(last?.position ?? 0);
    const from = last?.to_txid ?? FIRST_TXID;
    // Only after a logical restore into another cluster (transaction ids restart): new records
    // would fall into sealed ranges. See README (Sealing).
    if (BigInt(horizon) < BigInt(from)) throw new Error(`transaction ids are below the last seal (${horizon} < ${from}): sealing stopped`);
    // Where this seal ends: at the horizon, or, with more than `batch` records waiting, before
    // the first transaction that does not fit, so no transaction spans two seals; one
    // transaction larger than the batch is sealed whole. Counted, digested and listed by the
    // database (audit-trail.sql.ts): no record travels to this process.
    const extent = await sealExtent(q, tenantId, sql`txid >= ${from}::xid8 and txid < ${horizon}::xid8`, batch);
    if (extent.count === 0) return { sealed: 0, head, busy: false, more: false };
    const more = extent.count > batch;
    // The record after the first `batch` is the last one read: its transaction is the cut.
    const cut = extent.lastTxid!;
    const to = !more ? horizon : BigInt(extent.firstTxid!) < BigInt(cut) ? cut : (BigInt(cut) + 1n).toString();
    const range = sql`txid >= ${from}::xid8 and txid < ${to}::xid8`;
    const { count, digest } = more ? await sealDigest(q, tenantId, range) : extent;
    const position = head + 1;
    const hash = sealHash(key, last?.hash ?? genesisOf(tenantId), { position, fromTxid: from, toTxid: to, count, digest });
    if (!(await insertSeal(q, range, { tenantId, position, fromTxid: from, toTxid: to, count, digest, hash, sealedAt: now }))) {
      throw new Error(`audit seal ${position}: the records of its range changed while it was sealed`);
    }
    return { sealed: count, head: position, busy: false, more };
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

export interface SealPassDeps {
  db: Db;
  key: AuditKey;
  log: Logger;
  now: () => Date;
}

export interface SealPassOptions {
  /** The tenants to seal (every tenant: listTenantIds, or cachedTenantList around it). */
  tenants: () => Promise<TenantList>;
  /** Records per seal (default SEAL_BATCH). */
  batch?: number;
  /** Full batches sealed per tenant in one pass (a larger backlog is finished by the next pass). */
  maxBatchesPerTenant?: number;
  /** Stops between batches when aborted (shutdown): what is sealed stays sealed, the rest waits. */
  signal?: AbortSignal;
}

export interface SealPassResult {
  tenants: number;
  sealed: number;
  /** Tenants another sealer held (skipped; it seals them). */
  busy: number;
  /** Tenants whose sealing failed (logged by tenant id and error type; retried next pass). */
  failed: number;
}

/**
 * One sealing pass over every tenant: bounded batches per tenant, skipping a tenant another
 * instance is sealing. A tenant that fails is logged (tenant id and error type and code, never
 * record contents) and the pass goes on to the others; the caller decides what a failure means
 * (the audit.seal job fails, so it is counted and alerted on). Run by the audit.seal job
 * (src/jobs) every AUDIT_SEAL_INTERVAL_MS, on every worker; the advisory lock makes that safe.
 */
export async function sealPendingRecords(deps: SealPassDeps, o: SealPassOptions): Promise<SealPassResult> {
  const maxBatches = o.maxBatchesPerTenant ?? 10;
  const list = await o.tenants();
  const result: SealPassResult = { tenants: list.ids.length, sealed: 0, busy: 0, failed: 0 };
  for (const tenant of list.ids) {
    for (let i = 0; i < maxBatches && !o.signal?.aborted; i++) {
      try {
        const r = await sealTenant(deps.db, deps.key, tenant, deps.now(), { ...(o.batch ? { batch: o.batch } : {}), skipIfBusy: true });
        result.sealed += r.sealed;
        if (r.busy) result.busy += 1;
        if (r.sealed > 0) deps.log.debug({ tenant, sealed: r.sealed, head: r.head }, 'audit records sealed');
        if (!r.more) break;
      } catch (err) {
        result.failed += 1;
        deps.log.warn({ err, tenant }, 'audit sealing failed; retrying next pass');
        break;
      }
    }
    if (o.signal?.aborted) break;
  }
  return result;
}

/**
 * listTenantIds, re-read at most every refreshMs (an owner connection each time on PostgreSQL),
 * warning once when the database role cannot list tenants (records would never be sealed).
 */
export function cachedTenantList(db: Db, log: Logger, refreshMs = 60_000): () => Promise<TenantList> {
  let list: TenantList | undefined;
  let listedAt = -Infinity;
  let warned = false;
  return async () => {
    if (list && Date.now() - listedAt < refreshMs) return list;
    list = await listTenantIds(db);
    listedAt = Date.now();
    if (!list.complete && !warned) {
      warned = true;
      log.warn('audit sealer: the database role can list no tenants under row-level security (not superuser, no BYPASSRLS); records will not be sealed');
    }
    return list;
  };
}
