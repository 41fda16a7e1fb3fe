// Columns every versioned, tenant-scoped, soft-deletable table has.
import { integer, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const versionedColumns = () => ({
  tenantId: text('tenant_id').notNull(),
  id: uuid('id').notNull(),
  version: integer('version').notNull().default(1),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
});
