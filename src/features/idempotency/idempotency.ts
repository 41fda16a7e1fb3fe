// Idempotent writes (CONTRACT: Idempotency-Key). Inside the write transaction, before the change:
// a transaction-scoped advisory lock on (tenant, principal, key) makes a concurrent duplicate wait
// for the first to commit or roll back; then an existing record is replayed (same request) or
// refused (different request). After the change, the response is recorded in the same
// transaction, so a 2xx and its record commit or vanish together. Failed requests record nothing:
// retrying them runs them again.
//
// The recorded body is encrypted whole with the field-encryption key ring: it is the response, so
// it holds the resource with its sensitive fields decrypted (a patient's SSN). Bound by its
// associated data to the tenant, principal and key it was recorded under. The status and headers
// (Location, ETag) stay plaintext. The request fingerprint is stored keyed (an HMAC with the blind
// index key): a plain hash of a body whose other fields sit in the patients table would let anyone
// with the database try every SSN against it.
import { and, eq, gt, lte, sql } from 'drizzle-orm';
import { AppError } from '../../errors.js';
import { ciphertextPrefixFor, CIPHERTEXT_PREFIX, isCiphertext, type KeyRing } from '../../platform/crypto/index.js';
import type { Querier } from '../../platform/db/db.js';
import { idempotencyKeys } from './idempotency.table.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** What a transport hands the service layer for a request that carries an Idempotency-Key. */
export interface IdempotencyClaim {
  key: string;
  /** Hash of what makes two requests "the same": method, route, path parameters and body. */
  fingerprint: string;
  /** How the transport will answer with the service's result (recorded for replays). */
  respond(result: unknown): StoredResponse;
}

/** Thrown inside the transaction when the key was already used: the transport sends `response`. */
export class IdempotentReplay extends Error {
  constructor(readonly response: StoredResponse) {
    super('idempotent replay');
  }
}

interface Scope {
  tenantId: string;
  principal: string;
  now: Date;
  keys: KeyRing;
}

const bodyAad = (s: Pick<Scope, 'tenantId' | 'principal'>, key: string) => [s.tenantId, 'idempotency', s.principal, key];

/** Never an identifier system, so these tokens live apart from the identifiers' blind indexes. */
const FINGERPRINT_DOMAIN = 'carebase:idempotency-fingerprint';
const storedFingerprint = (s: Scope, c: IdempotencyClaim) => s.keys.blindIndex(s.tenantId, FINGERPRINT_DOMAIN, c.fingerprint);

/** The stored body: a JSON string holding the ciphertext of the body's JSON (null stays null). */
function sealBody(s: Scope, key: string, body: unknown): string | null {
  return body === undefined || body === null ? null : s.keys.encrypt(JSON.stringify(body), bodyAad(s, key));
}

/**
 * The body as recorded. Records written before bodies were encrypted hold the body itself (an
 * object: response bodies are never bare strings), replayed as is until they expire. A record that
 * does not decrypt (its key left the ring) throws DecryptionError: a 500, never a re-run.
 */
function openBody(s: Pick<Scope, 'tenantId' | 'principal' | 'keys'>, key: string, stored: unknown): unknown {
  return typeof stored === 'string' && isCiphertext(stored) ? JSON.parse(s.keys.decrypt(stored, bodyAad(s, key))) : stored;
}

/**
 * A record's body as it was answered (decrypted), for features that must look into recorded
 * answers, e.g. an erasure finding those that hold a patient. Throws DecryptionError when its key
 * is not in the ring.
 */
export function recordedBody(keys: KeyRing, record: { tenantId: string; principal: string; key: string; body: unknown }): unknown {
  return openBody({ tenantId: record.tenantId, principal: record.principal, keys }, record.key, record.body);
}

export async function claimKey(q: Querier, s: Scope, c: IdempotencyClaim): Promise<void> {
  await q.execute(sql`select pg_advisory_xact_lock(hashtextextended(${JSON.stringify([s.tenantId, s.principal, c.key])}, 0))`);
  const where = and(eq(idempotencyKeys.tenantId, s.tenantId), eq(idempotencyKeys.principal, s.principal), eq(idempotencyKeys.key, c.key));
  const [row] = await q.select().from(idempotencyKeys).where(and(where, gt(idempotencyKeys.expiresAt, s.now)));
  if (row) {
    // A record written before fingerprints were keyed holds the plain hash until it expires.
    if (row.fingerprint !== storedFingerprint(s, c) && row.fingerprint !== c.fingerprint) throw new AppError('IDEMPOTENCY_KEY_REUSED');
    throw new IdempotentReplay({ status: row.status, headers: row.headers, body: openBody(s, c.key, row.body) });
  }
  // An expired record of the same key no longer counts; make room for the new one.
  await q.delete(idempotencyKeys).where(and(where, lte(idempotencyKeys.expiresAt, s.now)));
}

export async function recordKey(q: Querier, s: Scope, c: IdempotencyClaim, result: unknown): Promise<void> {
  const r = c.respond(result);
  await q.insert(idempotencyKeys).values({
    tenantId: s.tenantId,
    principal: s.principal,
    key: c.key,
    fingerprint: storedFingerprint(s, c),
    status: r.status,
    headers: r.headers,
    body: sealBody(s, c.key, r.body),
    createdAt: s.now,
    expiresAt: new Date(s.now.getTime() + IDEMPOTENCY_TTL_MS),
  });
}

export interface RecordsNotUnderKey {
  /** Live records whose body is encrypted under another key: it must stay in the ring until they expire. */
  readonly underOtherKeys: number;
  /** Live records whose body is plaintext (recorded before bodies were encrypted). */
  readonly plaintext: number;
  /** When the last of them expires. */
  readonly lastExpiresAt?: Date;
}

/** Idempotency records of the tenant not encrypted under `primaryKeyId`. Not rotated: they expire within IDEMPOTENCY_TTL_MS. */
export async function recordsNotUnderKey(q: Querier, tenantId: string, primaryKeyId: string, now: Date): Promise<RecordsNotUnderKey> {
  const text = sql`(${idempotencyKeys.body} #>> '{}')`;
  const encrypted = sql`jsonb_typeof(${idempotencyKeys.body}) = 'string' and starts_with(${text}, ${CIPHERTEXT_PREFIX})`;
  const [r] = await q
    .select({
      other: sql<number>`count(*) filter (where ${encrypted} and not starts_with(${text}, ${ciphertextPrefixFor(primaryKeyId)}))`.mapWith(Number),
      plain: sql<number>`count(*) filter (where ${idempotencyKeys.body} is not null and not (${encrypted}))`.mapWith(Number),
      last: sql<Date | null>`max(${idempotencyKeys.expiresAt}) filter (where ${idempotencyKeys.body} is not null and not (${encrypted} and starts_with(${text}, ${ciphertextPrefixFor(primaryKeyId)})))`.mapWith(idempotencyKeys.expiresAt),
    })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, tenantId), gt(idempotencyKeys.expiresAt, now)));
  return { underOtherKeys: r?.other ?? 0, plaintext: r?.plain ?? 0, ...(r?.last ? { lastExpiresAt: r.last } : {}) };
}

/**
 * Deletes expired records of every tenant. Run with no tenant set: then only the expired_cleanup
 * policy matches. The statement names no column on purpose — a WHERE or RETURNING on a column
 * would make PostgreSQL apply SELECT policies too, which (rightly) show no tenant's rows — and its
 * guards make it a no-op unless it runs as the application role without a tenant.
 */
export async function sweepExpiredKeys(q: Querier): Promise<number> {
  const r = (await q.execute(
    sql`delete from idempotency_keys where current_user = 'carebase_app' and coalesce(current_setting('app.tenant_id', true), '') = ''`,
  )) as { rowCount?: number | null; affectedRows?: number };
  return Number(r.rowCount ?? r.affectedRows ?? 0);
}
