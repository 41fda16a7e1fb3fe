import { boolean, date, jsonb, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import type { Static } from 'typebox';
import type { Address, HumanName } from '../shared/schemas.js';
import { versionedColumns } from '../shared/table-columns.js';
import type { StoredIdentifier } from './patients.schema.js';

export const patients = pgTable(
  'patients',
  {
    ...versionedColumns(),
    name: jsonb('name').$type<Static<typeof HumanName>>().notNull(),
    nameTokens: text('name_tokens').array().notNull(),
    birthDate: date('birth_date', { mode: 'string' }).notNull(),
    gender: text('gender').$type<'male' | 'female' | 'other' | 'unknown'>().notNull(),
    /** Stored form: a sensitive identifier's value is ciphertext, with its blind index (patients.service). */
    identifiers: jsonb('identifiers').$type<StoredIdentifier[]>().notNull(),
    email: text('email'),
    phone: text('phone'),
    address: jsonb('address').$type<Static<typeof Address>>(),
    active: boolean('active').notNull(),
    /** Always NULL at rest: the change's audit record and event on their way to the outbox (shared/write-meta.ts, migrations 0008, 0014). */
    writeMeta: jsonb('write_meta'),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type PatientRow = Omit<typeof patients.$inferSelect, 'writeMeta'>;
