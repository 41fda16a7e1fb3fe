import { jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { ErasureReport } from './erasure.schema.js';

export const patientErasures = pgTable(
  'patient_erasures',
  {
    tenantId: text('tenant_id').notNull(),
    patientId: uuid('patient_id').notNull(),
    status: text('status').$type<'in-progress' | 'completed'>().notNull(),
    reason: text('reason').notNull(),
    requestedBy: text('requested_by').notNull(),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    report: jsonb('report').$type<ErasureReport>(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.patientId] })],
);

export type ErasureRow = typeof patientErasures.$inferSelect;
