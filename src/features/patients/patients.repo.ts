import { eq, or, sql, type SQL } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { listLive } from '../shared/versioned-repo.js';
import { likePrefix } from './name-search.js';
import type { StoredIdentifier } from './patients.schema.js';
import { patients, type PatientRow } from './patients.table.js';

export interface PatientFilters {
  onlyId?: string;
  namePrefixes?: string[];
  birthDate?: string;
  /** Stored identifiers (or parts of one) of which a patient must have one: any of them. */
  identifier?: Partial<StoredIdentifier>[];
}

export function listPatients(q: Querier, tenantId: string, limit: number, afterId: string | undefined, f: PatientFilters) {
  const filters: (SQL | undefined)[] = [
    f.onlyId ? eq(patients.id, f.onlyId) : undefined,
    f.birthDate ? eq(patients.birthDate, f.birthDate) : undefined,
    // Every word must prefix one of the name tokens.
    ...(f.namePrefixes ?? []).map(
      (p) => sql`exists (select 1 from unnest(${patients.nameTokens}) as t(token) where t.token like ${likePrefix(p)})`,
    ),
    // Containment, one test per alternative, so the GIN index (jsonb_path_ops) serves each.
    f.identifier ? or(...f.identifier.map((m) => sql`${patients.identifiers} @> ${JSON.stringify([m])}::jsonb`)) : undefined,
  ];
  return listLive<PatientRow>(q, patients, tenantId, limit, afterId, filters);
}
