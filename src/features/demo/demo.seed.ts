// Seeds the demo tenant on an empty database, through the same service functions the API uses,
// all in one transaction: concurrent starts seed once, and a crash mid-way leaves nothing half-made.
import { systemPrincipal } from '../../auth/principal.js';
import type { Ctx, FieldKeys } from '../../context.js';
import type { Auditor } from '../audit/auditor.js';
import type { Db } from '../../platform/db/db.js';
import { withinTransaction } from '../../platform/db/nested.js';
import type { Logger } from '../../platform/log.js';
import { createLocation } from '../locations/locations.service.js';
import { createPatient } from '../patients/patients.service.js';
import { createProvider } from '../providers/providers.service.js';
import { noResourceCache } from '../shared/resource-cache.js';
import { insertTenant } from '../tenants/tenants.service.js';
import { DEMO_LOCATIONS, DEMO_TENANT, demoPatients, demoProviders } from './demo-data.js';

export interface SeedReport {
  seeded: boolean;
  locations: number;
  providers: number;
  patients: number;
}

export async function seedDemo(db: Db, log: Logger, audit: Auditor, keys: FieldKeys, now = () => new Date()): Promise<SeedReport> {
  return db.tx(DEMO_TENANT, async (q) => {
    if (!(await insertTenant(q, DEMO_TENANT, 'Demo Clinic Group'))) return { seeded: false, locations: 0, providers: 0, patients: 0 };
    const ctx: Ctx = { principal: systemPrincipal(DEMO_TENANT), tenantId: DEMO_TENANT, requestId: 'seed', now, db: withinTransaction(q, db), cache: noResourceCache, log, audit, keys };
    const locationIds: string[] = [];
    for (const l of DEMO_LOCATIONS) locationIds.push((await createLocation(ctx, l)).id);
    const providers = demoProviders(locationIds);
    for (const p of providers) await createProvider(ctx, p);
    const patients = demoPatients();
    for (const p of patients) await createPatient(ctx, p);
    return { seeded: true, locations: locationIds.length, providers: providers.length, patients: patients.length };
  });
}
