import { jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { Decision } from './purposes.js';

/** Append-only (migration 0006): the application may insert and select, never update or delete. */
export const consents = pgTable(
  'consents',
  {
    tenantId: text('tenant_id').notNull(),
    id: uuid('id').notNull(),
    patientId: uuid('patient_id').notNull(),
    purpose: text('purpose').notNull(),
    decision: text('decision').$type<Decision>().notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull(),
    actorSub: text('actor_sub').notNull(),
    actorRoles: text('actor_roles').array().notNull(),
    note: text('note'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    /** Always NULL at rest: the change's audit record and event on their way to the outbox (shared/write-meta.ts, migrations 0008, 0014). */
    writeMeta: jsonb('write_meta'),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type ConsentRow = Omit<typeof consents.$inferSelect, 'writeMeta'>;
