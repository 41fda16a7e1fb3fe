import type { Principal } from './auth/principal.js';
import type { Auditor } from './features/audit/auditor.js';
import type { IdempotencyClaim } from './features/idempotency/idempotency.js';
import type { ResourceCache } from './features/shared/resource-cache.js';
import type { KeyRing } from './platform/crypto/index.js';
import type { Logger } from './platform/log.js';
import type { Db } from './platform/db/db.js';
import type { TraceContext } from './platform/tracing/tracing.js';

/**
 * The field-encryption key ring, with the identifier systems whose values it encrypts
 * (ENCRYPTED_IDENTIFIER_SYSTEMS): what to encrypt travels with what to encrypt it with.
 */
export interface FieldKeys extends KeyRing {
  readonly identifierSystems: readonly string[];
}

/**
 * What every service function receives, whichever transport called it: who acts, for which
 * tenant, under which request ID, the clock, and the database to run its transaction on.
 */
export interface Ctx {
  readonly principal: Principal;
  readonly tenantId: string;
  readonly requestId: string;
  readonly now: () => Date;
  readonly db: Db;
  readonly log: Logger;
  /** Write-through cache of resources by id (a no-op where there is none). */
  readonly cache: ResourceCache;
  /** Where the request came from, for the audit trail. */
  readonly client?: { readonly ip?: string; readonly userAgent?: string };
  readonly audit: Auditor;
  /** Encrypts and decrypts the most sensitive fields (patients' government and insurance identifiers). */
  readonly keys: FieldKeys;
  /** Present when the request carries an Idempotency-Key; honoured by writeTx. */
  readonly idempotency?: IdempotencyClaim;
  /**
   * The request's or job's span when it is traced (and db and cache are then its traced views):
   * what the work causes elsewhere — an event, a job — continues this trace.
   */
  readonly trace?: TraceContext | undefined;
}
