// Blind index: a keyed HMAC of a value, so exact-match search on an encrypted field is an
// equality test on a stored token instead of a decryption of every row.
//
// The index key comes from its own secret (BLIND_INDEX_KEY), never from an encryption key: the
// tokens must stay the same when the primary encryption key rotates and after old encryption keys
// are retired, or every stored token would have to be recomputed at each rotation and searches
// would miss rows during it. HKDF turns that secret into a key used for nothing else.
//
// The tenant and the identifier system are MAC inputs, so the same SSN gives unrelated tokens in
// two tenants (no cross-tenant linking from a database dump) and under two systems. Tokens are
// 128 bits: collision-free for any realistic number of values, and short in an index.
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { encodeParts } from './encoding.js';

/** Version prefix: a later scheme (another key, another length) can live beside this one. */
export const BLIND_INDEX_PREFIX = 'bi1:';

const TOKEN_BYTES = 16;

export type BlindIndexer = (tenantId: string, system: string, value: string) => string;

export function createBlindIndexer(blindIndexKey: Buffer): BlindIndexer {
  const key: KeyObject = createSecretKey(Buffer.from(hkdfSync('sha256', blindIndexKey, 'carebase', 'carebase/blind-index/v1', 32)));
  // The value is used exactly as given: whatever exact match means to the caller (the stored
  // identifier value) is what the token matches, no more and no less.
  return (tenantId, system, value) =>
    BLIND_INDEX_PREFIX +
    createHmac('sha256', key)
      .update(encodeParts('carebase/blind-index/v1', [tenantId, system, value]))
      .digest()
      .subarray(0, TOKEN_BYTES)
      .toString('base64url');
}
