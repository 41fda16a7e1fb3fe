// The extension point of the patient export. A section is one kind of PHI the system holds about a
// patient (questionnaire responses, consents, and whatever comes later: appointments, documents…).
// It contributes one member of the JSON export (its records exactly as its own GET returns them)
// and its FHIR R4 resources to the Bundle. The export lists its sections in sections.ts; the JSON
// response schema, the Bundle and the audit record's counts follow from that list.
import type { TSchema } from 'typebox';
import type { Querier } from '../../platform/db/db.js';

/**
 * Rows per query when a section reads a patient's records (keyset pages on id). It bounds what any
 * one query loads, however many records a patient has; the export document itself is built in
 * memory and so grows with the patient's record (see README, "Patient export").
 */
export const EXPORT_BATCH = 200;

/** A FHIR R4 resource as it goes into the Bundle. Its id must be a UUID (its fullUrl is urn:uuid:<id>). */
export interface FhirResource {
  resourceType: string;
  id: string;
  [element: string]: unknown;
}

/** What a section reads with. */
export interface SectionScope {
  /** The export's one read-only snapshot transaction, scoped to the tenant (never the cache). */
  readonly q: Querier;
  readonly tenantId: string;
  readonly patientId: string;
  /** How a FHIR resource refers to the patient: the fullUrl of the Bundle's Patient entry. */
  readonly patientRef: string;
}

export interface ExportSection {
  /** The member of the JSON export holding this section's records, and its name in the audit record's counts. */
  readonly key: string;
  /** One record of the JSON export: the schema of the section's own GET. */
  readonly schema: TSchema;
  /** Every record of the patient (deleted ones aside), oldest first, as the section's own GET returns it. */
  json(s: SectionScope): Promise<unknown[]>;
  /** The same records as FHIR R4 resources whose patient references are s.patientRef. */
  fhir(s: SectionScope): Promise<FhirResource[]>;
}

/**
 * Every row, page by page in id order. `page` follows the repositories' convention: up to
 * `limit + 1` rows after `afterId`, the extra one saying that more follow.
 */
export async function* batches<R extends { id: string }>(
  page: (afterId: string | undefined, limit: number) => Promise<R[]>,
): AsyncGenerator<R[]> {
  let afterId: string | undefined;
  for (;;) {
    const rows = await page(afterId, EXPORT_BATCH);
    const batch = rows.slice(0, EXPORT_BATCH);
    if (batch.length > 0) yield batch;
    if (rows.length <= EXPORT_BATCH) return;
    afterId = batch.at(-1)!.id;
  }
}

/** Every row of `page`, each mapped (in order, one at a time: mappings may query). */
export async function collect<R extends { id: string }, T>(
  page: (afterId: string | undefined, limit: number) => Promise<R[]>,
  map: (row: R) => T | Promise<T>,
): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of batches(page)) for (const row of batch) out.push(await map(row));
  return out;
}
