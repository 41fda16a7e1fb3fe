// The key ring: envelope encryption of the most sensitive fields (government and insurance
// identifiers, stored secrets) with AES-256-GCM, node:crypto only.
//
// Each value gets its own random 256-bit data key (DEK). The value is sealed under the DEK with
// the caller's associated data; the DEK is sealed ("wrapped") under a key-encryption key (KEK)
// from ENCRYPTION_KEYS, whose id is written in the ciphertext (ciphertext.ts). So:
//   - every key of the ring decrypts what it wrapped, and the primary (the first) wraps new values;
//   - rotation re-wraps the 32-byte DEK under the primary and leaves the sealed value untouched,
//     so it needs neither the plaintext nor the caller's associated data (rewrap());
//   - IVs are random 96-bit, and each KEK only ever seals DEKs (one seal per value written or
//     rotated), far below the 2^32 random-IV limit of one GCM key.
// Associated data binds a value to where it belongs (e.g. tenant + field + system): a ciphertext
// copied into another row or tenant fails authentication instead of decrypting there.
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { createBlindIndexer } from './blind-index.js';
import { DecryptionError, formatCiphertext, parseCiphertext, type ParsedCiphertext } from './ciphertext.js';
import { encodeParts } from './encoding.js';
import { KEY_BYTES, KEY_ID_PATTERN, type EncryptionKey } from './key-material.js';

/** Where a value belongs, e.g. [tenantId, 'patient.identifier', system]. Must be the same to decrypt. */
export type Aad = string | readonly string[];

export interface KeyRing {
  /** The key that wraps every new value (the first of ENCRYPTION_KEYS). */
  readonly primaryKeyId: string;
  /** Every key id in the ring, primary first. */
  readonly keyIds: readonly string[];
  /** `enc:v1:<primaryKeyId>:<payload>`; a new random DEK and IVs each call. */
  encrypt(plaintext: string, aad: Aad): string;
  /** Throws DecryptionError: malformed, unknown-key (not in the ring) or authentication (altered, wrong aad). */
  decrypt(ciphertext: string, aad: Aad): string;
  /** True when the value is wrapped under a key other than the primary. Throws DecryptionError when malformed. */
  needsRotation(ciphertext: string): boolean;
  /**
   * The same value with its DEK re-wrapped under the primary key (unchanged when it already is).
   * Authenticates the wrapped DEK, not the sealed value: that needs the aad, and decrypt checks it.
   */
  rewrap(ciphertext: string): string;
  /** `bi1:<token>`: equal for equal (tenant, system, value), whatever the encryption keys (blind-index.ts). */
  blindIndex(tenantId: string, system: string, value: string): string;
}

export interface KeyRingMaterial {
  /** First = primary. */
  readonly keys: readonly EncryptionKey[];
  readonly blindIndexKey: Buffer;
}

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface Sealed {
  iv: Buffer;
  tag: Buffer;
  data: Buffer;
}

function seal(key: KeyObject, plaintext: Buffer, aad: Buffer): Sealed {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES }).setAAD(aad);
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), data };
}

function open(key: KeyObject, s: Sealed, aad: Buffer): Buffer {
  try {
    const decipher = createDecipheriv(ALGORITHM, key, s.iv, { authTagLength: TAG_BYTES }).setAAD(aad).setAuthTag(s.tag);
    return Buffer.concat([decipher.update(s.data), decipher.final()]);
  } catch {
    // One message for a wrong key, an altered byte anywhere and mismatched associated data: they
    // are indistinguishable by design, and the reason must not become an oracle.
    throw new DecryptionError('authentication', 'encrypted value failed authentication: it was altered, or belongs to another record or field');
  }
}

const dekAad = (keyId: string) => encodeParts('carebase/dek/v1', [keyId]);
const valueAad = (aad: Aad) => encodeParts('carebase/value/v1', typeof aad === 'string' ? [aad] : aad);

export function createKeyRing(material: KeyRingMaterial): KeyRing {
  // Config has already checked all this with one line per problem; here it guards other callers.
  if (material.keys.length === 0) throw new Error('a key ring needs at least one key');
  const keks = new Map<string, KeyObject>();
  for (const { id, key } of material.keys) {
    if (!KEY_ID_PATTERN.test(id) || keks.has(id) || key.length !== KEY_BYTES) throw new Error('key ring keys need unique valid ids and 32-byte keys');
    keks.set(id, createSecretKey(Buffer.from(key))); // a copy: later changes to the caller's buffer don't reach it
  }
  if (material.blindIndexKey.length < KEY_BYTES) throw new Error('the blind index key must be at least 32 bytes');
  const primaryKeyId = material.keys[0]!.id;
  const primary = keks.get(primaryKeyId)!;
  const blindIndex = createBlindIndexer(material.blindIndexKey);

  function wrap(dek: Buffer): Pick<ParsedCiphertext, 'keyId' | 'wrapIv' | 'wrapTag' | 'wrappedDek'> {
    const w = seal(primary, dek, dekAad(primaryKeyId));
    return { keyId: primaryKeyId, wrapIv: w.iv, wrapTag: w.tag, wrappedDek: w.data };
  }

  function unwrap(p: ParsedCiphertext): Buffer {
    const kek = keks.get(p.keyId);
    if (!kek) throw new DecryptionError('unknown-key', `encrypted value is wrapped under key "${p.keyId}", which is not in ENCRYPTION_KEYS`);
    return open(kek, { iv: p.wrapIv, tag: p.wrapTag, data: p.wrappedDek }, dekAad(p.keyId));
  }

  return Object.freeze({
    primaryKeyId,
    keyIds: Object.freeze([...keks.keys()]),
    encrypt(plaintext: string, aad: Aad): string {
      if (typeof plaintext !== 'string') throw new TypeError('encrypt() takes a string');
      const dek = randomBytes(KEY_BYTES);
      try {
        const v = seal(createSecretKey(dek), Buffer.from(plaintext, 'utf8'), valueAad(aad));
        return formatCiphertext({ ...wrap(dek), iv: v.iv, tag: v.tag, data: v.data });
      } finally {
        dek.fill(0);
      }
    },
    decrypt(ciphertext: string, aad: Aad): string {
      const p = parseCiphertext(ciphertext);
      const dek = unwrap(p);
      try {
        return open(createSecretKey(dek), { iv: p.iv, tag: p.tag, data: p.data }, valueAad(aad)).toString('utf8');
      } finally {
        dek.fill(0);
      }
    },
    needsRotation(ciphertext: string): boolean {
      return parseCiphertext(ciphertext).keyId !== primaryKeyId;
    },
    rewrap(ciphertext: string): string {
      const p = parseCiphertext(ciphertext);
      if (p.keyId === primaryKeyId) return ciphertext;
      const dek = unwrap(p);
      try {
        return formatCiphertext({ ...p, ...wrap(dek) });
      } finally {
        dek.fill(0);
      }
    },
    blindIndex,
  });
}
