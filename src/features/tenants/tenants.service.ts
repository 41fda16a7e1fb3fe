// Tenants are provisioned by an operator (CLI) or the demo seed; tokens name them. A token for a
// tenant that does not exist is refused before any route runs.
import { eq } from 'drizzle-orm';
import { TENANT_ID_PATTERN } from '../../auth/principal.js';
import { validationFailed } from '../../errors.js';
import type { Db, Querier } from '../../platform/db/db.js';
import { tenants } from './tenants.table.js';

const CACHE_MS = 60_000;

export interface TenantDirectory {
  isProvisioned(tenantId: string): Promise<boolean>;
  /** Creates the tenant; false when it already existed. */
  create(tenantId: string, name: string): Promise<boolean>;
}

export async function insertTenant(q: Querier, tenantId: string, name: string): Promise<boolean> {
  const rows = await q.insert(tenants).values({ id: tenantId, name }).onConflictDoNothing().returning({ id: tenants.id });
  return rows.length === 1;
}

export function createTenantDirectory(db: Db, now = () => Date.now()): TenantDirectory {
  // Positive answers only are cached: a tenant is never deleted, and a new one must work at once.
  const known = new Map<string, number>();
  return {
    async isProvisioned(tenantId) {
      const until = known.get(tenantId);
      if (until !== undefined && until > now()) return true;
      const rows = await db.read(tenantId, (q) => q.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)));
      if (rows.length === 0) return false;
      known.set(tenantId, now() + CACHE_MS);
      return true;
    },
    async create(tenantId, name) {
      if (!TENANT_ID_PATTERN.test(tenantId)) {
        throw validationFailed([{ path: '/id', message: 'must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit' }]);
      }
      return db.tx(tenantId, (q) => insertTenant(q, tenantId, name));
    },
  };
}
