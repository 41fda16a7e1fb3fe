// Key material as operators write it: ENCRYPTION_KEYS ("id:base64,id:base64", the first is the
// primary) and BLIND_INDEX_KEY (base64). Pure checks shared by config.ts and the development key
// file, so a key meets the same rules wherever it comes from. No message ever quotes key material,
// nor a key id that failed validation (a pasted key with its colon missing would be "the id").

export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
export const KEY_BYTES = 32;
export const KEY_HINT = 'base64 of exactly 32 random bytes (e.g. openssl rand -base64 32)';

export interface EncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

/** Base64 (standard or url-safe, padding optional) of exactly 32 bytes; undefined otherwise. */
export function decodeKey(text: string): Buffer | undefined {
  // Buffer.from skips characters it does not know, so the shape is checked first: 43 characters
  // (+ one optional "=") is exactly 32 bytes.
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length === KEY_BYTES ? bytes : undefined;
}

/**
 * Why these bytes cannot be a randomly generated key, or undefined. 32 random bytes have about 30
 * distinct values and are almost never all printable, so these only catch placeholders and
 * passphrases, never a real key (the chance of a false alarm is below 1e-13).
 */
export function keyWeakness(key: Buffer): string | undefined {
  const distinct = new Set(key).size;
  if (distinct === 1) return key[0] === 0 ? 'is all zero bytes' : 'repeats a single byte';
  if (distinct < 16) return 'has fewer than 16 distinct byte values';
  if (key.every((b) => b >= 0x20 && b <= 0x7e)) return 'is printable text (a passphrase), not random bytes';
  return undefined;
}

/** One key (BLIND_INDEX_KEY): the bytes, or one problem for the config line. */
export function parseSingleKey(text: string): { key: Buffer } | { problem: string } {
  const key = decodeKey(text.trim());
  if (!key) return { problem: `must be ${KEY_HINT}` };
  const weak = keyWeakness(key);
  return weak ? { problem: `is a weak key: it ${weak}; use ${KEY_HINT}` } : { key };
}

/** "id:base64,id:base64" → keys in order (first = primary), or every problem joined into one line. */
export function parseKeyList(text: string): { keys: EncryptionKey[] } | { problem: string } {
  const problems: string[] = [];
  const keys: EncryptionKey[] = [];
  const entries = text.split(',').map((e) => e.trim());
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    if (!KEY_ID_PATTERN.test(id)) {
      problems.push(`${where} must be <id>:<key> with an id of 1-32 letters, digits, "_" or "-"`);
      return;
    }
    const key = decodeKey(entry.slice(colon + 1));
    if (!key) {
      problems.push(`key "${id}" must be ${KEY_HINT}`);
      return;
    }
    const weak = keyWeakness(key);
    if (weak) {
      problems.push(`key "${id}" is a weak key: it ${weak}`);
      return;
    }
    const sameId = keys.find((k) => k.id === id);
    const sameKey = keys.find((k) => k.key.equals(key));
    if (sameId) problems.push(`key id "${id}" appears more than once`);
    else if (sameKey) problems.push(`keys "${sameKey.id}" and "${id}" are the same key`);
    else keys.push({ id, key });
  });
  return problems.length > 0 ? { problem: problems.join('; ') } : { keys };
}
