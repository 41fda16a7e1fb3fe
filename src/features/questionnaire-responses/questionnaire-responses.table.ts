import { integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { ResponseItem } from '../questionnaires/fhir-types.js';
import { versionedColumns } from '../shared/table-columns.js';

export type ResponseStatus = 'in-progress' | 'completed' | 'amended';

export const questionnaireResponses = pgTable(
  'questionnaire_responses',
  {
    ...versionedColumns(),
    questionnaireId: uuid('questionnaire_id').notNull(),
    questionnaireVersion: integer('questionnaire_version').notNull(),
    patientId: uuid('patient_id').notNull(),
    status: text('status').$type<ResponseStatus>().notNull(),
    items: jsonb('items').$type<ResponseItem[]>().notNull(),
    score: jsonb('score').$type<{ total: number; band: string | null }>(),
    amends: uuid('amends'),
    amendReason: text('amend_reason'),
    submittedAt: timestamp('submitted_at', { withTimezone: true }),
    /** Always NULL at rest: the change's audit record and event on their way to the outbox (shared/write-meta.ts, migrations 0008, 0014). */
    writeMeta: jsonb('write_meta'),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type ResponseRow = Omit<typeof questionnaireResponses.$inferSelect, 'writeMeta'>;
