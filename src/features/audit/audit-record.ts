// One audit record: who (actor sub and roles, client IP and user agent, request ID) did what
// (action) to which resource (type, id, and the patient it belongs to), with what outcome, when.
// Never PHI: ids only, and `detail` holds codes and counts, not values.
//
// Each record carries an HMAC-SHA256 over its canonical form — a JSON array of its fields in a
// fixed order — under a key held outside the database, so a record changed in the database no
// longer matches its HMAC, and nobody without the key can forge one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AuditEventRow } from './audit.table.js';

export type AuditOutcome = 'success' | 'denied' | 'error';
export const AUDIT_ACTIONS = ['read', 'create', 'update', 'delete', 'export', 'erase', 'consent'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** What a service says about an access. */
export interface AuditEntry {
  action: AuditAction;
  resourceType: string;
  resourceId?: string | null;
  patientId?: string | null;
  outcome?: AuditOutcome;
  detail?: Record<string, unknown> | null;
}

/** Who accessed, from the request (or job) context. */
export interface AuditSubject {
  tenantId: string;
  principal: { sub: string; roles: ReadonlySet<string> };
  requestId: string;
  client?: { ip?: string; userAgent?: string };
}

export interface AuditKey {
  /** Stored with every record: which key signed it. */
  id: string;
  secret: Buffer;
}

export type Unsigned = Omit<AuditEventRow, 'keyId' | 'hmac'>;

/** Objects with their keys sorted, recursively: `detail` reads back from jsonb in another key order. */
function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedKeys((v as Record<string, unknown>)[k])]));
}

/**
 * The fields after tenant, id and time as a JSON array: what a batched read keeps until it is
 * signed (pending-batch.ts). canonicalFrom() makes the canonical form of it without reading it.
 */
export function canonicalTail(r: Omit<Unsigned, 'tenantId' | 'id' | 'occurredAt'>): string {
  return JSON.stringify([
    r.actorSub, [...r.actorRoles], r.action, r.resourceType, r.resourceId, r.patientId, r.outcome, r.requestId, r.clientIp,
    r.userAgent, sortedKeys(r.detail ?? null),
  ]);
}

/**
 * The canonical form from its first three fields and the rest's canonicalTail(): a JSON array
 * written out is its elements joined by commas, so this is byte for byte JSON.stringify of all 14.
 */
export const canonicalFrom = (tenantId: string, id: string, occurredAt: Date, tail: string) =>
  `[${JSON.stringify(tenantId)},${JSON.stringify(id)},"${occurredAt.toISOString()}",${tail.slice(1)}`;

/** The fields in their fixed order; any change of a field changes this string. */
export const canonical = (r: Unsigned): string => canonicalFrom(r.tenantId, r.id, r.occurredAt, canonicalTail(r));

export const hmacOf = (key: AuditKey, text: string) => createHmac('sha256', key.secret).update(text).digest('base64url');

export function signRecord(key: AuditKey, r: Unsigned): AuditEventRow {
  return { ...r, keyId: key.id, hmac: hmacOf(key, canonical(r)) };
}

/**
 * A signed record as an element of an audit_event_batches row (migration 0010): its canonical form
 * followed by its key id and HMAC.
 */
export const signedElement = (key: AuditKey, text: string, hmac: string) => `${text.slice(0, -1)},${JSON.stringify(key.id)},"${hmac}"]`;

export function hmacMatches(key: AuditKey, r: AuditEventRow): boolean {
  const expected = Buffer.from(hmacOf(key, canonical(r)));
  const actual = Buffer.from(r.hmac);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** The record as audit_events' columns, as JSON: a synchronous record's insert (auditor.ts). */
export function asColumnsJson(r: AuditEventRow): Record<string, unknown> {
  return {
    tenant_id: r.tenantId, id: r.id, occurred_at: r.occurredAt.toISOString(), actor_sub: r.actorSub, actor_roles: r.actorRoles,
    action: r.action, resource_type: r.resourceType, resource_id: r.resourceId, patient_id: r.patientId, outcome: r.outcome,
    request_id: r.requestId, client_ip: r.clientIp, user_agent: r.userAgent, detail: r.detail, key_id: r.keyId, hmac: r.hmac,
  };
}
