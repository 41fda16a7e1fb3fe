// The stored form of an encrypted value: `enc:v1:<keyId>:<payload>`, payload = base64url of
//
//   wrapIv(12) | wrapTag(16) | wrappedDek(32) | iv(12) | tag(16) | ciphertext(n)
//
// A compact, self-describing string: it fits any text or JSON column, says which key-encryption key
// wrapped its data key (so decrypt picks the key and rotation can find values not under the
// primary with a plain prefix test, even in SQL), and carries everything else decryption needs.
// Parsing here checks only the shape; authenticity is the AES-GCM tags' job (key-ring.ts).

export const CIPHERTEXT_PREFIX = 'enc:v1:';

const IV = 12;
const TAG = 16;
const DEK = 32;
const HEADER_BYTES = IV + TAG + DEK + IV + TAG;

export interface ParsedCiphertext {
  readonly keyId: string;
  readonly wrapIv: Buffer;
  readonly wrapTag: Buffer;
  readonly wrappedDek: Buffer;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly data: Buffer;
}

export type DecryptionFailure = 'malformed' | 'unknown-key' | 'authentication';

/** Why a value could not be decrypted. Messages name the key id at most: never the value. */
export class DecryptionError extends Error {
  constructor(
    readonly reason: DecryptionFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DecryptionError';
  }
}

/** Whether a stored value is (claims to be) one of ours; plaintext never starts with the prefix. */
export function isCiphertext(value: string): boolean {
  return value.startsWith(CIPHERTEXT_PREFIX);
}

/** The prefix every value wrapped under `keyId` starts with (e.g. for a SQL `NOT LIKE` filter). */
export function ciphertextPrefixFor(keyId: string): string {
  return `${CIPHERTEXT_PREFIX}${keyId}:`;
}

export function formatCiphertext(p: ParsedCiphertext): string {
  const payload = Buffer.concat([p.wrapIv, p.wrapTag, p.wrappedDek, p.iv, p.tag, p.data]);
  return `${ciphertextPrefixFor(p.keyId)}${payload.toString('base64url')}`;
}

export function parseCiphertext(value: string): ParsedCiphertext {
  const m = /^enc:v1:([A-Za-z0-9_-]{1,32}):([A-Za-z0-9_-]+)$/.exec(value);
  const payload = m ? Buffer.from(m[2]!, 'base64url') : undefined;
  // Re-encoding must give back the same text: rejects non-canonical base64url (stray bits).
  if (!m || !payload || payload.length < HEADER_BYTES || payload.toString('base64url') !== m[2]) {
    throw new DecryptionError('malformed', 'encrypted value is malformed (expected enc:v1:<keyId>:<payload>)');
  }
  let at = 0;
  const take = (n: number) => payload.subarray(at, (at += n));
  return {
    keyId: m[1]!,
    wrapIv: take(IV),
    wrapTag: take(TAG),
    wrappedDek: take(DEK),
    iv: take(IV),
    tag: take(TAG),
    data: payload.subarray(at),
  };
}

/** The key id a ciphertext names, without decrypting it. */
export function keyIdOf(value: string): string {
  return parseCiphertext(value).keyId;
}
