import { newId } from '../../platform/ids.js';
import { authorize } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { AppError, notFound, validationFailed, type ErrorDetail } from '../../errors.js';
import type { Querier } from '../../platform/db/db.js';
import { isUniqueViolation } from '../../platform/db/errors.js';
import { assertValid } from '../../platform/validation.js';
import { missingLocations } from '../locations/locations.repo.js';
import { mergePatch } from '../shared/merge-patch.js';
import { cachePut, readThrough } from '../shared/resource-cache.js';
import { writeTx } from '../shared/write-tx.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { findLive, softDeleteLocked, updateLocked } from '../shared/versioned-repo.js';
import { assertCurrent, iso, requireVersion } from '../shared/versioning.js';
import { isValidNpi } from './npi.js';
import { listProviders as listRows } from './providers.repo.js';
import { ProviderInput, type Provider, type ProviderListQuery } from './providers.schema.js';
import { providers, type ProviderRow } from './providers.table.js';
import { writeMeta } from '../shared/write-meta.js';

const toProvider = (r: ProviderRow): Provider => ({
  id: r.id,
  version: r.version,
  name: r.name,
  npi: r.npi,
  ...(r.specialty ? { specialty: r.specialty } : {}),
  locationIds: r.locationIds,
  createdAt: iso(r.createdAt),
  updatedAt: iso(r.updatedAt),
});

const inputOf = ({ name, npi, specialty, locationIds }: Provider): ProviderInput => ({ name, npi, locationIds, ...(specialty ? { specialty } : {}) });

/** Rules beyond the schema: a real NPI, and locations that exist in this tenant. */
async function checkRules(q: Querier, tenantId: string, input: ProviderInput): Promise<void> {
  const problems: ErrorDetail[] = [];
  if (!isValidNpi(input.npi)) problems.push({ path: '/npi', message: 'is not a valid NPI (check digit mismatch)' });
  // Ids are stored as PostgreSQL prints them (lower case); an upper-case spelling is the same id.
  const ids = (input.locationIds ?? []).map((id) => id.toLowerCase());
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i) problems.push({ path: `/locationIds/${i}`, message: 'repeats an earlier location' });
  });
  for (const id of await missingLocations(q, tenantId, ids)) {
    problems.push({ path: `/locationIds/${ids.indexOf(id)}`, message: 'is not a location of this tenant' });
  }
  if (problems.length > 0) throw validationFailed(problems);
}

const columnsOf = (i: ProviderInput) => ({
  name: i.name,
  npi: i.npi,
  specialty: i.specialty ?? null,
  locationIds: (i.locationIds ?? []).map((id) => id.toLowerCase()),
});

// The unique index, not a prior SELECT, decides duplicates: a check-then-insert would race.
async function uniqueNpi<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (isUniqueViolation(err, 'providers_npi_key')) throw new AppError('CONFLICT', 'Another provider of this tenant has this NPI');
    throw err;
  }
}

export async function createProvider(ctx: Ctx, input: ProviderInput): Promise<Provider> {
  authorize(ctx.principal, 'providers:write');
  const now = ctx.now();
  const row = { tenantId: ctx.tenantId, id: newId(), version: 1, ...columnsOf(input), createdAt: now, updatedAt: now };
  return cachePut(ctx, 'providers', await uniqueNpi(
    writeTx(ctx, async (q) => {
      await checkRules(q, ctx.tenantId, input);
      await q.insert(providers).values({ ...row, writeMeta: writeMeta(ctx, now, { type: 'provider.created' }) });
      return toProvider({ ...row, deletedAt: null });
    }),
  ));
}

export async function getProvider(ctx: Ctx, id: string): Promise<Provider> {
  authorize(ctx.principal, 'providers:read');
  const found = await readThrough(ctx, 'providers', id, async () => {
    const row = await ctx.db.read(ctx.tenantId, (q) => findLive<ProviderRow>(q, providers, ctx.tenantId, id));
    return row && toProvider(row);
  });
  if (!found) throw notFound('Provider');
  return found;
}

export async function listProviders(ctx: Ctx, query: ProviderListQuery) {
  authorize(ctx.principal, 'providers:read');
  const { limit, afterId } = pageRequest(query);
  const rows = await ctx.db.read(ctx.tenantId, (q) => listRows(q, ctx.tenantId, limit, afterId, query));
  return toPage(rows.map(toProvider), limit);
}

export async function updateProvider(ctx: Ctx, id: string, expectedVersion: number | undefined, patch: object): Promise<Provider> {
  authorize(ctx.principal, 'providers:write');
  const expected = requireVersion(expectedVersion);
  return cachePut(ctx, 'providers', await uniqueNpi(
    writeTx(ctx, async (q) => {
      const current = toProvider(assertCurrent(await findLive<ProviderRow>(q, providers, ctx.tenantId, id, true), expected, 'Provider'));
      const next = mergePatch(inputOf(current), patch);
      assertValid<ProviderInput>(ProviderInput, next);
      await checkRules(q, ctx.tenantId, next);
      const now = ctx.now();
      return toProvider(await updateLocked<ProviderRow>(q, providers, ctx.tenantId, id, { ...columnsOf(next), writeMeta: writeMeta(ctx, now, { type: 'provider.updated' }) }, now));
    }),
  ));
}

export async function deleteProvider(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<void> {
  authorize(ctx.principal, 'providers:delete');
  const expected = requireVersion(expectedVersion);
  const deletedVersion = await writeTx(ctx, async (q) => {
    assertCurrent(await findLive<ProviderRow>(q, providers, ctx.tenantId, id, true), expected, 'Provider');
    const now = ctx.now();
    return softDeleteLocked(q, providers, ctx.tenantId, id, now, { writeMeta: writeMeta(ctx, now, { type: 'provider.deleted' }) });
  });
  await ctx.cache.tombstone(ctx.tenantId, 'providers', id, deletedVersion);
}
