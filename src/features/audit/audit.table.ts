import { bigint, jsonb, pgTable, pgView, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

const auditColumns = () => ({
  tenantId: text('tenant_id').notNull(),
  id: uuid('id').notNull(),
  occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull(),
  actorSub: text('actor_sub').notNull(),
  actorRoles: text('actor_roles').array().notNull(),
  action: text('action').notNull(),
  resourceType: text('resource_type').notNull(),
  resourceId: text('resource_id'),
  patientId: uuid('patient_id'),
  outcome: text('outcome').$type<'success' | 'denied' | 'error'>().notNull(),
  requestId: text('request_id'),
  clientIp: text('client_ip'),
  userAgent: text('user_agent'),
  detail: jsonb('detail').$type<Record<string, unknown>>(),
  keyId: text('key_id').notNull(),
  hmac: text('hmac').notNull(),
  // Set by the database: the writing transaction (migration 0009; what seals are ranges of).
  txid: text('txid').notNull(),
});

export const auditEvents = pgTable('audit_events', auditColumns(), (t) => [primaryKey({ columns: [t.tenantId, t.id] })]);

/** How long a stretch of time one audit_event_batches row may cover (migration 0010's CHECK). */
export const BATCH_SPAN_MS = 600_000;

/** Every record: audit_events rows, batch members (migration 0010) and records still in the outbox (0014). */
export const auditTrail = pgView('audit_trail', auditColumns()).existing();

/** A record as the application builds and reads it (txid is the database's, used by sealing only). */
export type AuditEventRow = Omit<typeof auditEvents.$inferSelect, 'txid'>;

// Seals (migration 0009): each covers the tenant's records written by transactions in
// [fromTxid, toTxid), lists their ids and commits to their HMACs; hash chains the seals.
export const auditSeals = pgTable(
  'audit_seals',
  {
    tenantId: text('tenant_id').notNull(),
    position: bigint('position', { mode: 'number' }).notNull(),
    fromTxid: text('from_txid').notNull(),
    toTxid: text('to_txid').notNull(),
    eventIds: uuid('event_ids').array().notNull(),
    digest: text('digest').notNull(),
    hash: text('hash').notNull(),
    sealedAt: timestamp('sealed_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.position] })],
);

export type AuditSealRow = typeof auditSeals.$inferSelect;
