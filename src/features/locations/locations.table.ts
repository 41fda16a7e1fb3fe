import { jsonb, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import type { Static } from 'typebox';
import type { Address } from '../shared/schemas.js';
import { versionedColumns } from '../shared/table-columns.js';

export const locations = pgTable(
  'locations',
  {
    ...versionedColumns(),
    // Always NULL at rest: the change's event on its way to the outbox (shared/write-meta.ts, migration 0008).
    writeMeta: jsonb('write_meta'),
    name: text('name').notNull(),
    address: jsonb('address').$type<Static<typeof Address>>(),
    timeZone: text('time_zone').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type LocationRow = Omit<typeof locations.$inferSelect, 'writeMeta'>;
