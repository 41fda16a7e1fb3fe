import { bigint, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const auditEvents = pgTable(
  'audit_events',
  {
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
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type AuditEventRow = typeof auditEvents.$inferSelect;

export const auditChain = pgTable(
  'audit_chain',
  {
    tenantId: text('tenant_id').notNull(),
    position: bigint('position', { mode: 'number' }).notNull(),
    eventId: uuid('event_id').notNull(),
    eventHmac: text('event_hmac').notNull(),
    hash: text('hash').notNull(),
    sealedAt: timestamp('sealed_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.position] })],
);

export type AuditChainRow = typeof auditChain.$inferSelect;
