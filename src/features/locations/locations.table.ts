import { jsonb, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import type { Static } from 'typebox';
import type { Address } from '../shared/schemas.js';
import { versionedColumns } from '../shared/table-columns.js';

export const locations = pgTable(
  'locations',
  {
    ...versionedColumns(),
    name: text('name').notNull(),
    address: jsonb('address').$type<Static<typeof Address>>(),
    timeZone: text('time_zone').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type LocationRow = typeof locations.$inferSelect;
