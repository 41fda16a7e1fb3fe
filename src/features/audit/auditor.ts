// Writes audit records. A write's own record goes into its statement (see write helpers and
// migration 0008); everything else — reads, denials, failures — comes here. By default these are
// batched: kept in memory at most `flushMs` (≤ 1 s), then stored as one audit_event_batches row per
// tenant and flush (migration 0010), so a cached read costs neither a synchronous insert nor a row
// and four index entries of its own; `reads: 'sync'` inserts each into audit_events before the
// response instead. A failed flush keeps its batches as they were and retries them; close()
// flushes what is left (graceful shutdown).
import { param, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { idAt, msOfId } from '../../platform/ids.js';
import { asColumnsJson, signedElement, signRecord, type AuditEntry, type AuditKey, type AuditSubject, type Unsigned } from './audit-record.js';
import { BATCH_SPAN_MS, type AuditEventRow } from './audit.table.js';

export interface AuditorStats {
  pending: number;
  written: number;
  failedFlushes: number;
  dropped: number;
}

export interface Auditor {
  readonly key: AuditKey;
  /** A signed record of an access (for a write statement's audit_record, or for record()). */
  sign(who: AuditSubject, e: AuditEntry, at: Date): AuditEventRow;
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

const MAX_BATCH_RECORDS = 1000;

const COLUMNS = 'tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac';

/** One record into audit_events (AUDIT_READS=sync), from the same JSON form a write statement carries. */
const insertOne = (r: AuditEventRow) =>
  sql`insert into audit_events (${sql.raw(COLUMNS)}) select ${sql.raw(COLUMNS)} from jsonb_populate_record(null::audit_events, ${JSON.stringify(asColumnsJson(r))}::jsonb)`;

/** A batched record waiting for its flush: what the batch row needs, and the record as its element. */
interface PendingRecord {
  tenantId: string;
  id: string;
  patientId: string | null;
  actorSub: string;
  element: string;
  hmac: string;
}

/** Records of one tenant, in id order, stored as one batch row; its id is its first record's, so a retry that follows a lost acknowledgement conflicts. */
interface Batch {
  tenantId: string;
  rows: PendingRecord[];
}

function insertBatch(b: Batch) {
  const patients = new Set<string>();
  const actors = new Set<string>();
  for (const r of b.rows) {
    if (r.patientId !== null) patients.add(r.patientId);
    actors.add(r.actorSub);
  }
  return sql`insert into audit_event_batches (tenant_id, id, first_id, last_id, patient_ids, actor_subs, record_count, records, record_ids, record_hmacs)
    values (${b.tenantId}, ${b.rows[0]!.id}::uuid, ${b.rows[0]!.id}::uuid, ${b.rows.at(-1)!.id}::uuid, ${param([...patients])}::uuid[],
      ${param([...actors])}::text[], ${b.rows.length}, ${`[${b.rows.map((r) => r.element).join(',')}]`}::json,
      ${param(b.rows.map((r) => r.id))}::uuid[], ${param(b.rows.map((r) => r.hmac))}::text[])
    on conflict do nothing`;
}

/**
 * Each tenant's records in id order, cut into batches of at most MAX_BATCH_RECORDS records and
 * BATCH_SPAN_MS of time (records held through a long outage would span more).
 */
function batchesOf(rows: PendingRecord[]): Batch[] {
  const byTenant = new Map<string, PendingRecord[]>();
  for (const r of rows) {
    const list = byTenant.get(r.tenantId);
    if (list) list.push(r);
    else byTenant.set(r.tenantId, [r]);
  }
  const out: Batch[] = [];
  for (const [tenantId, list] of byTenant) {
    list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let batch: Batch | undefined;
    for (const r of list) {
      if (!batch || batch.rows.length >= MAX_BATCH_RECORDS || msOfId(r.id) - msOfId(batch.rows[0]!.id) > BATCH_SPAN_MS) {
        batch = { tenantId, rows: [] };
        out.push(batch);
      }
      batch.rows.push(r);
    }
  }
  return out;
}

// Beyond this many unwritten records (the database has been down for a long while) the oldest go,
// loudly: memory must stay bounded. Counted in stats().dropped and logged as an error.
const MAX_PENDING = 100_000;

export function createAuditor(o: AuditorOptions): Auditor {
  let pending: PendingRecord[] = [];
  /** Batches whose insert failed: retried first, exactly as they were. */
  let unwritten: Batch[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const counts = { written: 0, failedFlushes: 0, dropped: 0 };

  const unsigned = (who: AuditSubject, e: AuditEntry, at: Date): Unsigned => ({
    tenantId: who.tenantId,
    id: idAt(at),
    occurredAt: at,
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
  const sign = (who: AuditSubject, e: AuditEntry, at: Date): AuditEventRow => signRecord(o.key, unsigned(who, e, at));

  function schedule(): void {
    timer ??= setTimeout(() => {
      timer = undefined;
      void flush();
    }, o.flushMs);
  }

  const unwrittenRows = () => unwritten.reduce((n, b) => n + b.rows.length, 0);

  function flush(): Promise<void> {
    flushing = flushing.then(async () => {
      if (pending.length === 0 && unwritten.length === 0) return;
      const batches = [...unwritten, ...batchesOf(pending)];
      pending = [];
      unwritten = [];
      for (const [i, b] of batches.entries()) {
        try {
          await o.db.autocommit(b.tenantId, (q) => q.execute(insertBatch(b)));
          counts.written += b.rows.length;
        } catch (err) {
          counts.failedFlushes++;
          unwritten = batches.slice(i);
          let over = unwrittenRows() + pending.length - MAX_PENDING;
          while (over > 0 && unwritten.length > 0) {
            const lost = unwritten.shift()!.rows.length;
            over -= lost;
            counts.dropped += lost;
            o.log.error({ dropped: lost }, 'audit: pending records over the bound were dropped');
          }
          o.log.warn({ err, pending: unwrittenRows() + pending.length }, 'audit: writing read records failed; retrying');
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
    async record(who, e, at) {
      if (o.mode === 'sync') {
        const row = sign(who, e, at);
        await o.db.autocommit(row.tenantId, (q) => q.execute(insertOne(row)));
        counts.written++;
        return;
      }
      const r = unsigned(who, e, at);
      pending.push({ tenantId: r.tenantId, id: r.id, patientId: r.patientId, actorSub: r.actorSub, ...signedElement(o.key, r) });
      // Once per batch's worth: the flush queued here takes every record pending when it runs.
      // (Queuing one per record past the mark, while an earlier flush was still writing, queued
      // hundreds of flushes that each wrote the few records arriving meanwhile as a batch row.)
      if (pending.length === MAX_BATCH_RECORDS) void flush();
      else schedule();
    },
    flush,
    stats: () => ({ pending: pending.length + unwrittenRows(), ...counts }),
    async close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
      if (pending.length + unwrittenRows() > 0) o.log.error({ lost: pending.length + unwrittenRows() }, 'audit: records could not be written before shutdown');
    },
  };
}
