import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { locations } from './locations.table.js';

/**
 * The ids among `ids` that are not live locations of the tenant. The live ones stay share-locked
 * until the caller's transaction ends, so a concurrent delete (which locks the location FOR
 * UPDATE, then counts providers there) waits for the caller to commit and sees its reference.
 */
export async function missingLocations(q: Querier, tenantId: string, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const found = await q
    .select({ id: locations.id })
    .from(locations)
    .where(and(eq(locations.tenantId, tenantId), inArray(locations.id, ids), isNull(locations.deletedAt)))
    .for('share');
  const have = new Set(found.map((r) => r.id));
  return ids.filter((id) => !have.has(id));
}
