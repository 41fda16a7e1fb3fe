import { eq, sql, type SQL } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { listLive } from '../shared/versioned-repo.js';
import { likePrefix } from './name-search.js';
import { patients, type PatientRow } from './patients.table.js';

export interface PatientFilters {
  onlyId?: string;
  namePrefixes?: string[];
  birthDate?: string;
  identifier?: { system?: string; value: string };
}

export function listPatients(q: Querier, tenantId: string, limit: number, afterId: string | undefined, f: PatientFilters) {
  const filters: (SQL | undefined)[] = [
    f.onlyId ? eq(patients.id, f.onlyId) : undefined,
    f.birthDate ? eq(patients.birthDate, f.birthDate) : undefined,
    // Every word must prefix one of the name tokens.
    ...(f.namePrefixes ?? []).map(
      (p) => sql`exists (select 1 from unnest(${patients.nameTokens}) as t(token) where t.token like ${likePrefix(p)})`,
    ),
    f.identifier
      ? sql`${patients.identifiers} @> ${JSON.stringify([f.identifier.system === undefined ? { value: f.identifier.value } : f.identifier])}::jsonb`
      : undefined,
  ];
  return listLive<PatientRow>(q, patients, tenantId, limit, afterId, filters);
}
