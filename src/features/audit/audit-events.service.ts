// Use cases of the audit trail itself: search it (admins, managers), a patient's access log (who
// saw or changed the patient: an accounting of disclosures), and export it as signed NDJSON, ours
// or FHIR AuditEvent. Reading the trail is an access too, so each of these is audited, as
// resourceType 'AuditEvent': a search or an access log as 'read' (with the patient id when it is
// about one patient), an export as 'export'.
import { authorize, patientScope } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { notFound, OutOfScope, validationFailed } from '../../errors.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { auditedRead } from './audited.js';
import type { AuditEntry, AuditOutcome } from './audit-record.js';
import type { AuditEventRow } from './audit.table.js';
import { patientKnown } from './audit-events.repo.js';
import { lastAuditId, searchTrail, type AuditRowFilters } from './audit-trail.sql.js';
import type { AccessLogQuery, AuditEvent, AuditEventListQuery, AuditExportQuery, AuditFilters } from './audit-events.schema.js';
import { createExportSigner, type ExportFormat } from './export-signature.js';
import { toFhirAuditEvent } from './fhir-audit-event.js';

/** Rows per database round trip of an export: what bounds its memory. */
const EXPORT_PAGE = 500;

export function toAuditEvent(r: AuditEventRow): AuditEvent {
  return {
    id: r.id,
    occurredAt: r.occurredAt.toISOString(),
    actor: { sub: r.actorSub, roles: r.actorRoles },
    action: r.action as AuditEvent['action'],
    resource: { type: r.resourceType, id: r.resourceId },
    patientId: r.patientId,
    outcome: r.outcome,
    requestId: r.requestId,
    client: { ip: r.clientIp, userAgent: r.userAgent },
    detail: r.detail,
    keyId: r.keyId,
    hmac: r.hmac,
  };
}

/**
 * The filters as the repository takes them. Checked before anything is read or audited: a bad
 * request changes nothing (the schema has already checked each parameter on its own).
 */
function rowFilters(q: AuditFilters): AuditRowFilters {
  const from = q.from === undefined ? undefined : new Date(q.from);
  const to = q.to === undefined ? undefined : new Date(q.to);
  if (from && to && to < from) throw validationFailed([{ path: '/query/to', message: 'must not be before from' }]);
  return {
    ...(q.patientId !== undefined ? { patientId: q.patientId } : {}),
    ...(q.actor !== undefined ? { actor: q.actor } : {}),
    ...(q.action !== undefined ? { action: q.action } : {}),
    ...(q.resourceType !== undefined ? { resourceType: q.resourceType } : {}),
    ...(q.resourceId !== undefined ? { resourceId: q.resourceId } : {}),
    ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
  };
}

// Detail keys are written in the order PostgreSQL's jsonb keeps them (shorter keys first), so a
// record read back from the database has the canonical form its HMAC was computed over.
const readOf = (patientId: string | undefined, detail: Record<string, unknown>): AuditEntry => ({
  action: 'read',
  resourceType: 'AuditEvent',
  patientId: patientId ?? null,
  detail,
});

/** GET /v1/audit-events. */
export function listAuditEvents(ctx: Ctx, query: AuditEventListQuery) {
  const filters = rowFilters(query);
  const page = pageRequest(query);
  return auditedRead(
    ctx,
    readOf(query.patientId, { search: true }),
    async () => {
      authorize(ctx.principal, 'audit:read');
      // Read records of this instance that are still batched in memory go in first.
      await ctx.audit.flush();
      const rows = await ctx.db.read(ctx.tenantId, (q) => searchTrail(q, ctx.tenantId, filters, { limit: page.limit + 1, ...afterOf(page) }));
      return toPage(rows.map(toAuditEvent), page.limit);
    },
    (p) => [readOf(query.patientId, { count: p.data.length, search: true })],
  );
}

const afterOf = (p: { afterId?: string }) => (p.afterId !== undefined ? { afterId: p.afterId } : {});

/** A patient principal reading the log sees who and when, not the network addresses of the staff. */
const forViewer = (ctx: Ctx) => (e: AuditEvent): AuditEvent =>
  patientScope(ctx.principal) === undefined ? e : { ...e, client: { ip: null, userAgent: null } };

/** GET /v1/patients/{id}/access-log: every access to the patient's data, in time order. */
export function patientAccessLog(ctx: Ctx, patientId: string, query: AccessLogQuery) {
  const filters = { ...rowFilters(query), patientId };
  const page = pageRequest(query);
  return auditedRead(
    ctx,
    readOf(patientId, { accessLog: true }),
    async () => {
      authorize(ctx.principal, 'audit:access-log');
      const own = patientScope(ctx.principal);
      if (own !== undefined && own !== patientId) throw new OutOfScope('Patient');
      await ctx.audit.flush();
      const rows = await ctx.db.read(ctx.tenantId, async (q) => {
        // A patient the tenant never had is a 404, as for the patient itself.
        if (page.afterId === undefined && !(await patientKnown(q, ctx.tenantId, patientId))) throw notFound('Patient');
        return searchTrail(q, ctx.tenantId, filters, { limit: page.limit + 1, ...afterOf(page) });
      });
      return toPage(rows.map(toAuditEvent).map(forViewer(ctx)), page.limit);
    },
    (p) => [readOf(patientId, { count: p.data.length, accessLog: true })],
  );
}

export interface AuditExport {
  format: ExportFormat;
  /** The NDJSON lines, each "\n"-terminated, the trailer last; read page by page from the database. */
  lines: AsyncGenerator<string, void, undefined>;
}

/**
 * GET /v1/audit-events/export. Authorizes and checks the query at once (so refusals are ordinary
 * error responses); the lines are read as the consumer pulls them, EXPORT_PAGE rows at a time, up
 * to the newest matching record when the export started. Its 'export' audit record is written
 * when the stream ends: success with the count, or error when it failed or the client went away.
 */
export async function exportAuditEvents(ctx: Ctx, query: AuditExportQuery): Promise<AuditExport> {
  const filters = rowFilters(query);
  const format: ExportFormat = query.format === 'fhir' ? 'fhir' : 'carebase';
  const entry = (outcome: AuditOutcome, detail: Record<string, unknown>): AuditEntry => ({
    action: 'export', resourceType: 'AuditEvent', patientId: query.patientId ?? null, outcome, detail,
  });
  const upToId = await auditedRead(ctx, entry('success', { format }), async () => {
    authorize(ctx.principal, 'audit:export');
    await ctx.audit.flush();
    return ctx.db.read(ctx.tenantId, (q) => lastAuditId(q, ctx.tenantId, filters));
  }, () => []);
  return { format, lines: exportLines(ctx, filters, format, upToId, entry) };
}

async function* exportLines(
  ctx: Ctx,
  filters: AuditRowFilters,
  format: ExportFormat,
  upToId: string | undefined,
  entry: (outcome: AuditOutcome, detail: Record<string, unknown>) => AuditEntry,
): AsyncGenerator<string, void, undefined> {
  const signer = createExportSigner(ctx.audit.key, ctx.tenantId, format);
  let outcome: { ok: boolean; code?: string } = { ok: false, code: 'ABORTED' };
  try {
    let afterId: string | undefined;
    while (upToId !== undefined) {
      const page = { limit: EXPORT_PAGE, upToId, ...(afterId !== undefined ? { afterId } : {}) };
      const rows = await ctx.db.read(ctx.tenantId, (q) => searchTrail(q, ctx.tenantId, filters, page));
      for (const row of rows) {
        const record = toAuditEvent(row);
        yield signer.line(format === 'fhir' ? toFhirAuditEvent(record, ctx.tenantId) : record);
      }
      if (rows.length < EXPORT_PAGE) break;
      afterId = rows.at(-1)!.id;
    }
    yield signer.trailer(ctx.now());
    outcome = { ok: true };
  } catch (err) {
    outcome = { ok: false, code: 'INTERNAL' };
    // The response has started: the client gets a stream without a trailer (the connection is
    // closed), and the cause is logged here — codes and counts only.
    ctx.log.error({ err, lines: signer.count }, 'audit export failed mid-stream');
    throw err;
  } finally {
    const detail = outcome.ok ? { count: signer.count, format } : { code: outcome.code, count: signer.count, format };
    await ctx.audit.record(ctx, entry(outcome.ok ? 'success' : 'error', detail), ctx.now()).catch((err: unknown) => {
      ctx.log.error({ err }, 'audit export: its own audit record could not be written');
    });
  }
}
