// Writes audit records. A write's own record goes into its statement (see write helpers and
// migration 0005); everything else — reads, denials, failures — comes here. By default these are
// batched: kept in memory at most `flushMs` (≤ 1 s), then inserted with one multi-row INSERT per
// tenant, so a cached read costs no synchronous insert; `reads: 'sync'` inserts each before the
// response instead. A failed flush keeps the records and retries; close() flushes what is left
// (graceful shutdown).
import { param, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { idAt } from '../../platform/ids.js';
import { signRecord, type AuditEntry, type AuditKey, type AuditSubject } from './audit-record.js';
import type { AuditEventRow } from './audit.table.js';

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

const MAX_ROWS_PER_INSERT = 1000;

/**
 * One INSERT for many records: each column travels as one array parameter and unnest() turns the
 * arrays back into rows, so the statement has the same 16 parameters whatever the batch size
 * (drizzle's multi-row VALUES builder cost more CPU than the reads being audited). Roles travel
 * comma-joined (unnest would flatten an array of arrays; role names have no commas), details as
 * JSON text. A retried batch may hold rows that committed before a failure: those are skipped.
 */
function insertMany(rows: AuditEventRow[]) {
  const col = <T>(f: (r: AuditEventRow) => T) => param(rows.map(f));
  return sql`insert into audit_events (tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id,
      patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac)
    select t, i, o, a, string_to_array(r, ','), ac, rt, ri, pi, oc, rq, ip, ua, d::jsonb, k, h
    from unnest(${col((r) => r.tenantId)}::text[], ${col((r) => r.id)}::uuid[], ${col((r) => r.occurredAt.toISOString())}::timestamptz[],
      ${col((r) => r.actorSub)}::text[], ${col((r) => r.actorRoles.join(','))}::text[], ${col((r) => r.action)}::text[],
      ${col((r) => r.resourceType)}::text[], ${col((r) => r.resourceId)}::text[], ${col((r) => r.patientId)}::uuid[],
      ${col((r) => r.outcome)}::text[], ${col((r) => r.requestId)}::text[], ${col((r) => r.clientIp)}::text[],
      ${col((r) => r.userAgent)}::text[], ${col((r) => (r.detail === null ? null : JSON.stringify(r.detail)))}::text[],
      ${col((r) => r.keyId)}::text[], ${col((r) => r.hmac)}::text[])
      as x(t, i, o, a, r, ac, rt, ri, pi, oc, rq, ip, ua, d, k, h)
    on conflict do nothing`;
}
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

  async function insert(rows: AuditEventRow[]): Promise<void> {
    const byTenant = new Map<string, AuditEventRow[]>();
    for (const r of rows) {
      const list = byTenant.get(r.tenantId);
      if (list) list.push(r);
      else byTenant.set(r.tenantId, [r]);
    }
    for (const [tenantId, list] of byTenant) {
      for (let i = 0; i < list.length; i += MAX_ROWS_PER_INSERT) {
        const chunk = list.slice(i, i + MAX_ROWS_PER_INSERT);
        await o.db.autocommit(tenantId, (q) => q.execute(insertMany(chunk)));
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
