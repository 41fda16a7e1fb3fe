import { jsonb, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { versionedColumns } from '../shared/table-columns.js';
import type { QuestionnaireStatus, StoredQuestionnaire } from './questionnaires.schema.js';

export const questionnaires = pgTable(
  'questionnaires',
  {
    ...versionedColumns(),
    // Always NULL at rest: the change's event on its way to the outbox (shared/write-meta.ts, migration 0008).
    writeMeta: jsonb('write_meta'),
    // Copies of the resource's status, title and url, kept in step by the service, for filters.
    status: text('status').$type<QuestionnaireStatus>().notNull(),
    title: text('title'),
    url: text('url'),
    resource: jsonb('resource').$type<StoredQuestionnaire>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type QuestionnaireRow = Omit<typeof questionnaires.$inferSelect, 'writeMeta'>;
