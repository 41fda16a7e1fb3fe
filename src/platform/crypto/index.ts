// Field encryption, chosen once at start like every platform adapter: the key ring from
// ENCRYPTION_KEYS + BLIND_INDEX_KEY, or (outside production, where config requires both) the
// development ring kept in DATA_DIR/keys.
import type { Config } from '../../config.js';
import { loadDevKeyMaterial } from './dev-keys.js';
import { createKeyRing, type KeyRing } from './key-ring.js';

export { BLIND_INDEX_PREFIX } from './blind-index.js';
export { CIPHERTEXT_PREFIX, ciphertextPrefixFor, DecryptionError, isCiphertext, keyIdOf, type DecryptionFailure } from './ciphertext.js';
export { DEV_KEY_FILE, loadDevKeyMaterial } from './dev-keys.js';
export { createKeyRing, type Aad, type KeyRing, type KeyRingMaterial } from './key-ring.js';
export type { EncryptionKey } from './key-material.js';
export { rotate, rotateAll, type AnyRotationTarget, type RotateOptions, type RotationChange, type RotationReport, type RotationSummary, type RotationTarget } from './rotation.js';
export { DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS, isSensitiveIdentifierSystem } from './sensitive-identifiers.js';

/** Synchronous: reads (and, the first time in development, writes) a small file at most. */
export function loadKeyRing(c: Config['encryption']): KeyRing {
  if (c.keys && c.blindIndexKey) return createKeyRing({ keys: c.keys, blindIndexKey: c.blindIndexKey });
  if (c.keys || c.blindIndexKey) throw new Error('ENCRYPTION_KEYS and BLIND_INDEX_KEY are set together or not at all'); // config guarantees it
  return createKeyRing(loadDevKeyMaterial(c.keyDir));
}
