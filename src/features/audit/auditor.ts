// Writes audit records. A write's own record goes into its statement (element(); see write-meta.ts and
// migrations 0008, 0014); everything else — reads, denials, failures — comes here. By default these are
// batched: kept in memory at most `flushMs` (≤ 1 s), signed at the flush in the signing thread
// (batch-signer.ts), then stored as one audit_event_batches row per tenant and flush (migration
// 0010), so a cached read costs neither a synchronous insert nor a row and four index entries of
// its own; `reads: 'sync'` signs and inserts each into audit_events before the response instead. A
// failed flush keeps its batches as they were signed and retries them; close() flushes what is
// left (graceful shutdown).
import { param, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { idAt } from '../../platform/ids.js';
import { asColumnsJson, canonicalFrom, canonicalTail, hmacOf, signedElement, signRecord, type AuditEntry, type AuditKey, type AuditSubject, type Unsigned } from './audit-record.js';
import type { AuditEventRow } from './audit.table.js';
import { createBatchSigner } from './batch-signer.js';
import { MAX_BATCH_RECORDS, PendingBatch, type Batch, type UnsignedBatch } from './pending-batch.js';

export interface AuditorStats {
  pending: number;
  written: number;
  failedFlushes: number;
  dropped: number;
}

export interface Auditor {
  readonly key: AuditKey;
  /** A signed record of an access. */
  sign(who: AuditSubject, e: AuditEntry, at: Date): AuditEventRow;
  /**
   * A signed record as a batch element (audit-record.ts, signedElement): what a write statement
   * carries in its write_meta, stored with its outbox row and then in a batch (migration 0014).
   */
  element(who: AuditSubject, e: AuditEntry, at: Date): string;
  /** Records an access that is not part of a write statement. */
  record(who: AuditSubject, e: AuditEntry, at: Date): Promise<void>;
  /** Writes every pending record now. */
  flush(): Promise<void>;
  stats(): AuditorStats;
  /** Stops the timer and flushes (graceful shutdown). */
  close(): Promise<void>;
}

export interface AuditorOptions {
  db: Db;
  key: AuditKey;
  log: Logger;
  mode: 'batched' | 'sync';
  flushMs: number;
}

const COLUMNS = 'tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac';

/** One record into audit_events (AUDIT_READS=sync), from the same JSON form a write statement carries. */
const insertOne = (r: AuditEventRow) =>
  sql`insert into audit_events (${sql.raw(COLUMNS)}) select ${sql.raw(COLUMNS)} from jsonb_populate_record(null::audit_events, ${JSON.stringify(asColumnsJson(r))}::jsonb)`;

const insertBatch = (b: Batch) =>
  sql`insert into audit_event_batches (tenant_id, id, first_id, last_id, patient_ids, actor_subs, record_count, records, record_ids, record_hmacs)
    values (${b.tenantId}, ${b.firstId}::uuid, ${b.firstId}::uuid, ${b.lastId}::uuid, ${param(b.patientIds)}::uuid[],
      ${param(b.actorSubs)}::text[], ${b.count}, ${b.records}::json, ${b.ids}::uuid[], ${b.hmacs}::text[])
    on conflict do nothing`;

// Beyond this many unwritten records (the database has been down for a long while) the oldest go,
// loudly: memory must stay bounded. Counted in stats().dropped and logged as an error.
const MAX_PENDING = 100_000;

export function createAuditor(o: AuditorOptions): Auditor {
  /** Each tenant's batch being filled. */
  const open = new Map<string, PendingBatch>();
  /** Batches full (or cut at their time span) and not yet handed to a flush. */
  let closed: UnsignedBatch[] = [];
  /** Batches whose insert failed: retried first, exactly as they were. */
  let unwritten: Batch[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const counts = { written: 0, failedFlushes: 0, dropped: 0 };
  const signer = createBatchSigner(o.key, o.log);

  /** Every field but tenant, id and time. */
  const fields = (who: AuditSubject, e: AuditEntry): Omit<Unsigned, 'tenantId' | 'id' | 'occurredAt'> => ({
    actorSub: who.principal.sub,
    actorRoles: [...who.principal.roles].sort(),
    action: e.action,
    resourceType: e.resourceType,
    resourceId: e.resourceId ?? null,
    patientId: e.patientId ?? null,
    outcome: e.outcome ?? 'success',
    requestId: who.requestId,
    clientIp: who.client?.ip ?? null,
    userAgent: who.client?.userAgent ?? null,
    detail: e.detail ?? null,
  });
  const unsigned = (who: AuditSubject, e: AuditEntry, at: Date): Unsigned => ({ tenantId: who.tenantId, id: idAt(at), occurredAt: at, ...fields(who, e) });
  const sign = (who: AuditSubject, e: AuditEntry, at: Date): AuditEventRow => signRecord(o.key, unsigned(who, e, at));
  const element = (who: AuditSubject, e: AuditEntry, at: Date): string => {
    const text = canonicalFrom(who.tenantId, idAt(at), at, canonicalTail(fields(who, e)));
    return signedElement(o.key, text, hmacOf(o.key, text));
  };

  function schedule(): void {
    timer ??= setTimeout(() => {
      timer = undefined;
      void flush();
    }, o.flushMs);
  }

  const countOf = (batches: { count: number }[]) => batches.reduce((n, b) => n + b.count, 0);
  const pendingCount = () => countOf(unwritten) + countOf(closed) + [...open.values()].reduce((n, b) => n + b.count, 0);

  function flush(): Promise<void> {
    flushing = flushing.then(async () => {
      for (const b of open.values()) closed.push(b.close());
      open.clear();
      if (closed.length === 0 && unwritten.length === 0) return;
      const toSign = closed;
      closed = [];
      let signed: Batch[];
      try {
        signed = await Promise.all(toSign.map((b) => signer.sign(b)));
      } catch (err) {
        counts.failedFlushes++;
        closed = [...toSign, ...closed];
        o.log.error({ err, pending: pendingCount() }, 'audit: signing read records failed; retrying');
        schedule();
        return;
      }
      const batches = [...unwritten, ...signed];
      unwritten = [];
      for (const [i, b] of batches.entries()) {
        try {
          await o.db.autocommit(b.tenantId, (q) => q.execute(insertBatch(b)));
          counts.written += b.count;
        } catch (err) {
          counts.failedFlushes++;
          unwritten = batches.slice(i);
          let over = pendingCount() - MAX_PENDING;
          while (over > 0 && unwritten.length > 0) {
            const lost = unwritten.shift()!.count;
            over -= lost;
            counts.dropped += lost;
            o.log.error({ dropped: lost }, 'audit: pending records over the bound were dropped');
          }
          o.log.warn({ err, pending: pendingCount() }, 'audit: writing read records failed; retrying');
          schedule();
          return;
        }
      }
    });
    return flushing;
  }

  return {
    key: o.key,
    sign,
    element,
    async record(who, e, at) {
      if (o.mode === 'sync') {
        const row = sign(who, e, at);
        await o.db.autocommit(row.tenantId, (q) => q.execute(insertOne(row)));
        counts.written++;
        return;
      }
      const ms = at.getTime();
      let batch = open.get(who.tenantId);
      if (batch && !batch.fits(ms)) {
        closed.push(batch.close());
        batch = undefined;
      }
      if (!batch) open.set(who.tenantId, (batch = new PendingBatch(who.tenantId)));
      batch.add(ms, e.patientId ?? null, who.principal.sub, canonicalTail(fields(who, e)));
      if (batch.count === MAX_BATCH_RECORDS) {
        // Full: written by the flush queued here, which takes every batch pending when it runs.
        closed.push(batch.close());
        open.delete(who.tenantId);
        void flush();
      } else schedule();
    },
    flush,
    stats: () => ({ pending: pendingCount(), ...counts }),
    async close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
      await signer.close();
      const lost = pendingCount();
      if (lost > 0) o.log.error({ lost }, 'audit: records could not be written before shutdown');
    },
  };
}
