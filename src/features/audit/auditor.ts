// Writes audit records. A write's own record goes into its statement (see write helpers and
// migration 0005); everything else — reads, denials, failures — comes here. By default these are
// batched: kept in memory at most `flushMs` (≤ 1 s), then inserted with one multi-row INSERT per
// tenant, so a cached read costs no synchronous insert; `reads: 'sync'` inserts each before the
// response instead. A failed flush keeps the records and retries; close() flushes what is left
// (graceful shutdown).
import type { Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { v7 as uuidv7 } from 'uuid';
import { signRecord, type AuditEntry, type AuditKey, type AuditSubject } from './audit-record.js';
import { auditEvents, type AuditEventRow } from './audit.table.js';

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

const MAX_ROWS_PER_INSERT = 500;
// Beyond this many unwritten records (the database has been down for a long while) the oldest go,
// loudly: memory must stay bounded. Counted in stats().dropped and logged as an error.
const MAX_PENDING = 100_000;

export function createAuditor(o: AuditorOptions): Auditor {
  let pending: AuditEventRow[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const counts = { written: 0, failedFlushes: 0, dropped: 0 };

  const sign = (who: AuditSubject, e: AuditEntry, at: Date): AuditEventRow =>
    signRecord(o.key, {
      tenantId: who.tenantId,
      id: uuidv7(),
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

  async function insert(rows: AuditEventRow[]): Promise<void> {
    const byTenant = new Map<string, AuditEventRow[]>();
    for (const r of rows) byTenant.set(r.tenantId, [...(byTenant.get(r.tenantId) ?? []), r]);
    for (const [tenantId, list] of byTenant) {
      for (let i = 0; i < list.length; i += MAX_ROWS_PER_INSERT) {
        const chunk = list.slice(i, i + MAX_ROWS_PER_INSERT);
        // A retried batch may hold rows that did commit before the failure: skip those.
        await o.db.autocommit(tenantId, (q) => q.insert(auditEvents).values(chunk).onConflictDoNothing());
        counts.written += chunk.length;
      }
    }
  }

  function schedule(): void {
    timer ??= setTimeout(() => {
      timer = undefined;
      void flush();
    }, o.flushMs);
  }

  function flush(): Promise<void> {
    flushing = flushing.then(async () => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      try {
        await insert(batch);
      } catch (err) {
        counts.failedFlushes++;
        pending = [...batch, ...pending];
        if (pending.length > MAX_PENDING) {
          const lost = pending.length - MAX_PENDING;
          pending = pending.slice(lost);
          counts.dropped += lost;
          o.log.error({ dropped: lost }, 'audit: pending records over the bound were dropped');
        }
        o.log.warn({ err, pending: pending.length }, 'audit: writing read records failed; retrying');
        schedule();
      }
    });
    return flushing;
  }

  return {
    key: o.key,
    sign,
    async record(who, e, at) {
      const row = sign(who, e, at);
      if (o.mode === 'sync') {
        await insert([row]);
        return;
      }
      pending.push(row);
      if (pending.length >= MAX_ROWS_PER_INSERT) void flush();
      else schedule();
    },
    flush,
    stats: () => ({ pending: pending.length, ...counts }),
    async close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
      if (pending.length > 0) o.log.error({ lost: pending.length }, 'audit: records could not be written before shutdown');
    },
  };
}
