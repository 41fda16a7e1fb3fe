// HMAC-SHA256 (RFC 2104) of a short text, as base64url: H((K ^ opad) || H((K ^ ipad) || text)),
// from two calls of Node's one-shot crypto.hash() over buffers prepared once per key.
//
// Why not createHmac: it is what this computes (the tests compare the two), but each call makes an
// Hmac object, a JS wrapper around a native one, which the young-generation collector must treat
// as a weak handle when it dies. At one HMAC per audited read, that cost a cached read 1.3 µs of
// API CPU (2.3 % of its throughput, bench/RESULTS.md, twelfth session); crypto.hash() allocates
// nothing but its result. Texts longer than the prepared buffer go to createHmac.
import { createHash, createHmac, hash } from 'node:crypto';

const BLOCK = 64; // SHA-256's block size in bytes
const MAX_TEXT_BYTES = 16 * 1024;

interface Pads {
  /** K ^ ipad, followed by room for the text. */
  inner: Buffer;
  /** K ^ opad, followed by the inner digest. */
  outer: Buffer;
}

const padsOf = new WeakMap<Buffer, Pads>();

function padsFor(secret: Buffer): Pads {
  const known = padsOf.get(secret);
  if (known) return known;
  // A key longer than the block is replaced by its digest; a shorter one is padded with zeros.
  const key = secret.length > BLOCK ? createHash('sha256').update(secret).digest() : secret;
  const pads = { inner: Buffer.alloc(BLOCK + MAX_TEXT_BYTES), outer: Buffer.alloc(BLOCK + 32) };
  for (let i = 0; i < BLOCK; i++) {
    const k = key[i] ?? 0;
    pads.inner[i] = k ^ 0x36;
    pads.outer[i] = k ^ 0x5c;
  }
  padsOf.set(secret, pads);
  return pads;
}

/** HMAC-SHA256 of `text` (UTF-8) under `secret`, base64url-encoded. Synchronous: the buffers are reused. */
export function hmacSha256(secret: Buffer, text: string): string {
  // At most 3 bytes per UTF-16 unit: a text that may not fit takes the general path.
  if (text.length * 3 > MAX_TEXT_BYTES) return createHmac('sha256', secret).update(text).digest('base64url');
  const { inner, outer } = padsFor(secret);
  const n = inner.write(text, BLOCK, 'utf8');
  hash('sha256', inner.subarray(0, BLOCK + n), 'buffer').copy(outer, BLOCK);
  return hash('sha256', outer, 'base64url');
}
