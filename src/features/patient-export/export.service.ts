// Patient export: everything the system holds about one patient, as our JSON or as a FHIR R4
// Bundle (type collection). Read straight from the database — never the cache — in one read-only
// snapshot, so the patient and every section are of one moment; sections read their records in
// pages of EXPORT_BATCH rows. Audited as one 'export' record of the patient (with the format and a
// count per section), or as a denied or failed export.
import { sql } from 'drizzle-orm';
import { authorize, PERMISSIONS } from '../../auth/permissions.js';
import type { Principal, Role } from '../../auth/principal.js';
import type { Ctx } from '../../context.js';
import { notFound, OutOfScope } from '../../errors.js';
import type { Querier } from '../../platform/db/db.js';
import { auditedRead } from '../audit/audited.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { patientOfRow } from '../patients/patients.service.js';
import { patients, type PatientRow } from '../patients/patients.table.js';
import { findLive } from '../shared/versioned-repo.js';
import type { FhirResource, SectionScope } from './export-section.js';
import type { ExportFormat, PatientExportDocument } from './export.schema.js';
import { toFhirPatient } from './fhir-patient.js';
import { EXPORT_SECTIONS } from './sections.js';

export interface FhirBundleDocument {
  resourceType: 'Bundle';
  type: 'collection';
  timestamp: string;
  entry: { fullUrl: string; resource: FhirResource }[];
}

export type ExportResult =
  | { format: 'json'; document: PatientExportDocument; counts: Record<string, number> }
  | { format: 'fhir'; document: FhirBundleDocument; counts: Record<string, number> };

/** Roles that may export any patient of the tenant; the patient role exports only its own record. */
const ANY_PATIENT: readonly Role[] = (PERMISSIONS['patients:export'] as readonly Role[]).filter((r) => r !== 'patient');

function assertMayExport(p: Principal, id: string): void {
  authorize(p, 'patients:export');
  if (ANY_PATIENT.some((r) => p.roles.has(r))) return;
  // Allowed through the patient role alone (a staff token that also holds it included): own record only.
  if (p.patientId !== id) throw new OutOfScope('Patient');
}

/** Entries refer to each other by fullUrl; our ids are UUIDs, so urn:uuid:<id> names each resource. */
export const fullUrlOf = (id: string) => `urn:uuid:${id}`;

/**
 * Runs fn in one read-only transaction that sees one snapshot. On PostgreSQL that takes REPEATABLE
 * READ (read committed would give every batch its own snapshot); PGlite runs one transaction at a
 * time, so nothing commits in between, and its adapter has already run a statement (the tenant's
 * set_config), which SET TRANSACTION must precede.
 */
function inSnapshot<T>(ctx: Ctx, fn: (q: Querier) => Promise<T>): Promise<T> {
  return ctx.db.tx(ctx.tenantId, async (q) => {
    if (ctx.db.kind === 'postgres') await q.execute(sql`set transaction isolation level repeatable read, read only`);
    return fn(q);
  });
}

export function exportPatient(ctx: Ctx, id: string, format: ExportFormat = 'json'): Promise<ExportResult> {
  const target: AuditEntry = { action: 'export', resourceType: 'Patient', resourceId: id, patientId: id, detail: { format } };
  return auditedRead(ctx, target, () => buildExport(ctx, id, format), (r) => [{ ...target, detail: { format, counts: r.counts } }]);
}

async function buildExport(ctx: Ctx, id: string, format: ExportFormat): Promise<ExportResult> {
  assertMayExport(ctx.principal, id);
  const exportedAt = ctx.now().toISOString();
  return inSnapshot(ctx, async (q): Promise<ExportResult> => {
    const row = await findLive<PatientRow>(q, patients, ctx.tenantId, id);
    if (!row) throw notFound('Patient');
    // As GET /v1/patients/{id} returns it (sensitive identifiers decrypted).
    const patient = patientOfRow(ctx, row);
    const scope: SectionScope = { q, tenantId: ctx.tenantId, patientId: id, patientRef: fullUrlOf(id) };
    const counts: Record<string, number> = {};
    if (format === 'json') {
      const document: PatientExportDocument = { exportedAt, patient };
      for (const section of EXPORT_SECTIONS) {
        const records = await section.json(scope);
        document[section.key] = records;
        counts[section.key] = records.length;
      }
      return { format, document, counts };
    }
    const resources: FhirResource[] = [toFhirPatient(patient) as unknown as FhirResource];
    for (const section of EXPORT_SECTIONS) {
      const more = await section.fhir(scope);
      resources.push(...more);
      counts[section.key] = more.length;
    }
    const entry = resources.map((resource) => ({ fullUrl: fullUrlOf(resource.id), resource }));
    return { format, document: { resourceType: 'Bundle', type: 'collection', timestamp: exportedAt, entry }, counts };
  });
}
