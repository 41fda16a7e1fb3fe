import { newId } from '../../platform/ids.js';
import { authorize } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { AppError, notFound } from '../../errors.js';
import { assertValid } from '../../platform/validation.js';
import { mergePatch } from '../shared/merge-patch.js';
import { cachePut, readThrough } from '../shared/resource-cache.js';
import { writeTx } from '../shared/write-tx.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { assertCurrent, iso, requireVersion } from '../shared/versioning.js';
import { findLive, listLive, softDeleteLocked, updateLocked } from '../shared/versioned-repo.js';
import { countProvidersAt } from '../providers/providers.repo.js';
import { LocationInput, type Location, type LocationListQuery } from './locations.schema.js';
import { locations, type LocationRow } from './locations.table.js';
import { writeMeta } from '../shared/write-meta.js';

const toLocation = (r: LocationRow): Location => ({
  id: r.id,
  version: r.version,
  name: r.name,
  ...(r.address ? { address: r.address } : {}),
  timeZone: r.timeZone,
  createdAt: iso(r.createdAt),
  updatedAt: iso(r.updatedAt),
});

const inputOf = ({ name, address, timeZone }: Location): LocationInput => ({ name, timeZone, ...(address ? { address } : {}) });

export async function createLocation(ctx: Ctx, input: LocationInput): Promise<Location> {
  authorize(ctx.principal, 'locations:write');
  const now = ctx.now();
  const row = { tenantId: ctx.tenantId, id: newId(), version: 1, name: input.name, address: input.address ?? null, timeZone: input.timeZone, createdAt: now, updatedAt: now };
  return cachePut(ctx, 'locations', await writeTx(ctx, async (q) => {
    await q.insert(locations).values({ ...row, writeMeta: writeMeta(ctx, now, { type: 'location.created' }) });
    return toLocation({ ...row, deletedAt: null });
  }));
}

export async function getLocation(ctx: Ctx, id: string): Promise<Location> {
  authorize(ctx.principal, 'locations:read');
  const found = await readThrough(ctx, 'locations', id, async () => {
    const row = await ctx.db.read(ctx.tenantId, (q) => findLive<LocationRow>(q, locations, ctx.tenantId, id));
    return row && toLocation(row);
  });
  if (!found) throw notFound('Location');
  return found;
}

export async function listLocations(ctx: Ctx, query: LocationListQuery) {
  authorize(ctx.principal, 'locations:read');
  const { limit, afterId } = pageRequest(query);
  const rows = await ctx.db.read(ctx.tenantId, (q) => listLive<LocationRow>(q, locations, ctx.tenantId, limit, afterId));
  return toPage(rows.map(toLocation), limit);
}

export async function updateLocation(ctx: Ctx, id: string, expectedVersion: number | undefined, patch: object): Promise<Location> {
  authorize(ctx.principal, 'locations:write');
  const expected = requireVersion(expectedVersion);
  return cachePut(ctx, 'locations', await writeTx(ctx, async (q) => {
    const current = toLocation(assertCurrent(await findLive<LocationRow>(q, locations, ctx.tenantId, id, true), expected, 'Location'));
    const next = mergePatch(inputOf(current), patch);
    assertValid<LocationInput>(LocationInput, next);
    const now = ctx.now();
    const values = { name: next.name, address: next.address ?? null, timeZone: next.timeZone, writeMeta: writeMeta(ctx, now, { type: 'location.updated' }) };
    const row = await updateLocked<LocationRow>(q, locations, ctx.tenantId, id, values, now);
    return toLocation(row);
  }));
}

export async function deleteLocation(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<void> {
  authorize(ctx.principal, 'locations:delete');
  const expected = requireVersion(expectedVersion);
  const deletedVersion = await writeTx(ctx, async (q) => {
    assertCurrent(await findLive<LocationRow>(q, locations, ctx.tenantId, id, true), expected, 'Location');
    const inUse = await countProvidersAt(q, ctx.tenantId, id);
    if (inUse > 0) throw new AppError('CONFLICT', `Location is assigned to ${inUse} provider(s); remove it from them first`);
    const now = ctx.now();
    return softDeleteLocked(q, locations, ctx.tenantId, id, now, { writeMeta: writeMeta(ctx, now, { type: 'location.deleted' }) });
  });
  await ctx.cache.tombstone(ctx.tenantId, 'locations', id, deletedVersion);
}
