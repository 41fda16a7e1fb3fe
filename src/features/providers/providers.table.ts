import { jsonb, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import type { Static } from 'typebox';
import type { HumanName } from '../shared/schemas.js';
import { versionedColumns } from '../shared/table-columns.js';

export const providers = pgTable(
  'providers',
  {
    ...versionedColumns(),
    // Always NULL at rest: the change's event on its way to the outbox (shared/write-meta.ts, migration 0008).
    writeMeta: jsonb('write_meta'),
    name: jsonb('name').$type<Static<typeof HumanName>>().notNull(),
    npi: text('npi').notNull(),
    specialty: text('specialty'),
    locationIds: uuid('location_ids').array().notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type ProviderRow = Omit<typeof providers.$inferSelect, 'writeMeta'>;
