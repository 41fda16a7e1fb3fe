import { and, arrayContains, eq, isNull, sql } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { listLive } from '../shared/versioned-repo.js';
import { providers, type ProviderRow } from './providers.table.js';

export function listProviders(q: Querier, tenantId: string, limit: number, afterId: string | undefined, f: { locationId?: string; specialty?: string }) {
  return listLive<ProviderRow>(q, providers, tenantId, limit, afterId, [
    f.locationId ? arrayContains(providers.locationIds, [f.locationId]) : undefined,
    f.specialty ? sql`lower(${providers.specialty}) = lower(${f.specialty})` : undefined,
  ]);
}

export async function countProvidersAt(q: Querier, tenantId: string, locationId: string): Promise<number> {
  const [row] = await q
    .select({ n: sql<number>`count(*)::int` })
    .from(providers)
    .where(and(eq(providers.tenantId, tenantId), isNull(providers.deletedAt), arrayContains(providers.locationIds, [locationId])));
  return Number(row?.n ?? 0);
}
