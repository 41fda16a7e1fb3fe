// The key ring on its own: envelope encryption round trips, every kind of tampering is refused,
// associated data binds a value to its place, old keys keep decrypting, rewrap moves values to the
// primary without their plaintext, and blind indexes ignore the encryption keys entirely.
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DecryptionError, isCiphertext, keyIdOf, parseCiphertext } from './ciphertext.js';
import { encodeParts } from './encoding.js';
import { createKeyRing, type KeyRing } from './key-ring.js';
import { DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS, isSensitiveIdentifierSystem } from './sensitive-identifiers.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const k3 = randomBytes(32);
const indexKey = randomBytes(32);
const ring = (...keys: [string, Buffer][]): KeyRing => createKeyRing({ keys: keys.map(([id, key]) => ({ id, key })), blindIndexKey: indexKey });
const aad = ['tenant-a', 'patient.identifier', 'http://hl7.org/fhir/sid/us-ssn'];
const SSN = '123-45-6789';

/** The failure reason of fn, or a test failure if it did not throw a DecryptionError. */
function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecryptionError);
    return (err as DecryptionError).reason;
  }
  throw new Error('expected a DecryptionError, but the call succeeded');
}

/** The ciphertext with one byte of its binary payload flipped. */
function flipPayloadByte(ct: string, at: number): string {
  const [, , keyId, payload] = ct.split(':');
  const bytes = Buffer.from(payload!, 'base64url');
  bytes[at] = bytes[at]! ^ 0x01;
  return `enc:v1:${keyId}:${bytes.toString('base64url')}`;
}

describe('encrypt / decrypt', () => {
  it('round trips text, including empty and non-ASCII values', () => {
    const r = ring(['k1', k1]);
    for (const value of [SSN, '', 'Zoë Ñandú 山田 👩‍⚕️', 'x'.repeat(10_000)]) {
      const ct = r.encrypt(value, aad);
      expect(isCiphertext(ct)).toBe(true);
      expect(r.decrypt(ct, aad)).toBe(value);
    }
  });

  it('writes a compact self-describing string naming the primary key, never the plaintext', () => {
    const r = ring(['k2', k2], ['k1', k1]);
    const ct = r.encrypt(SSN, aad);
    expect(ct).toMatch(/^enc:v1:k2:[A-Za-z0-9_-]+$/);
    expect(keyIdOf(ct)).toBe('k2');
    expect(ct).not.toContain(SSN);
    expect(ct).not.toContain(Buffer.from(SSN).toString('base64url'));
    // 88 bytes of envelope + the value: short enough for any column or index.
    expect(ct.length).toBeLessThan(160);
  });

  it('gives a different ciphertext each time (fresh data key and IVs)', () => {
    const r = ring(['k1', k1]);
    const a = parseCiphertext(r.encrypt(SSN, aad));
    const b = parseCiphertext(r.encrypt(SSN, aad));
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.wrapIv.equals(b.wrapIv)).toBe(false);
    expect(a.wrappedDek.equals(b.wrappedDek)).toBe(false);
    expect(a.data.equals(b.data)).toBe(false);
  });

  it('accepts associated data as one string or several parts', () => {
    const r = ring(['k1', k1]);
    expect(r.decrypt(r.encrypt(SSN, 'oauth:tenant-a:google'), 'oauth:tenant-a:google')).toBe(SSN);
  });
});

describe('tampering and misuse fail with a clear error', () => {
  const r = ring(['k2', k2], ['k1', k1]);
  const ct = r.encrypt(SSN, aad);
  // Payload layout: wrapIv 0-11, wrapTag 12-27, wrappedDek 28-59, iv 60-71, tag 72-87, data 88-.
  it.each([
    ['wrap IV', 0],
    ['wrap tag', 20],
    ['wrapped data key', 40],
    ['IV', 65],
    ['tag', 80],
    ['first data byte', 88],
    ['last data byte', 88 + SSN.length - 1],
  ])('a flipped byte in the %s → authentication failure', (_region, at) => {
    expect(reasonOf(() => r.decrypt(flipPayloadByte(ct, at), aad))).toBe('authentication');
  });

  it('a key id swapped for another key of the ring → authentication failure', () => {
    expect(reasonOf(() => r.decrypt(ct.replace('enc:v1:k2:', 'enc:v1:k1:'), aad))).toBe('authentication');
  });

  it('a key id not in the ring → unknown-key, naming the key id', () => {
    expect(reasonOf(() => r.decrypt(ct.replace('enc:v1:k2:', 'enc:v1:k9:'), aad))).toBe('unknown-key');
    expect(() => r.decrypt(ct.replace('enc:v1:k2:', 'enc:v1:k9:'), aad)).toThrow(/"k9".*ENCRYPTION_KEYS/);
  });

  it.each([
    ['plaintext', SSN],
    ['no payload', 'enc:v1:k2:'],
    ['a payload shorter than the envelope', ct.slice(0, 60)],
    ['another version', ct.replace('enc:v1:', 'enc:v1x:')],
    ['characters outside base64url', `${ct.slice(0, -1)}+`],
    ['an invalid key id', ct.replace('enc:v1:k2:', 'enc:v1:k 2:')],
  ])('%s → malformed', (_what, bad) => {
    expect(reasonOf(() => r.decrypt(bad, aad))).toBe('malformed');
  });

  it('non-canonical base64url (stray low bits in the last character) → malformed', () => {
    const ten = r.encrypt('1234567890', aad); // 98 bytes → 131 characters: the last one has 4 unused bits
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(ten.at(-1)!);
    expect(r.decrypt(ten, aad)).toBe('1234567890');
    expect(reasonOf(() => r.decrypt(`${ten.slice(0, -1)}${alphabet[last | 1]}`, aad))).toBe('malformed');
  });

  it('a payload cut short by whole bytes → authentication failure (the tag covers the length)', () => {
    expect(reasonOf(() => r.decrypt(ct.slice(0, -4), aad))).toBe('authentication');
  });

  it('associated data of another tenant, field or system → authentication failure', () => {
    for (const other of [
      ['tenant-b', 'patient.identifier', 'http://hl7.org/fhir/sid/us-ssn'],
      ['tenant-a', 'patient.email', 'http://hl7.org/fhir/sid/us-ssn'],
      ['tenant-a', 'patient.identifier', 'http://hl7.org/fhir/sid/us-medicare'],
      ['tenant-a', 'patient.identifier'],
      [],
      'tenant-a',
    ]) {
      expect(reasonOf(() => r.decrypt(ct, other))).toBe('authentication');
    }
  });

  it('associated data parts cannot be re-split to match', () => {
    const c = r.encrypt(SSN, ['a|b', 'c']);
    expect(reasonOf(() => r.decrypt(c, ['a', 'b|c']))).toBe('authentication');
    expect(reasonOf(() => r.decrypt(c, 'a|bc'))).toBe('authentication');
  });

  it('a ring with other keys under the same ids cannot decrypt', () => {
    const imposter = ring(['k2', k3]);
    expect(reasonOf(() => imposter.decrypt(ct, aad))).toBe('authentication');
  });

  it('error messages carry neither the value nor the ciphertext', () => {
    for (const bad of [flipPayloadByte(ct, 90), ct.replace('k2', 'k9'), ct.slice(0, 30)]) {
      try {
        r.decrypt(bad, aad);
      } catch (err) {
        const text = `${(err as Error).message} ${inspect(err)}`;
        expect(text).not.toContain(SSN);
        expect(text).not.toContain(bad.slice(12, 40));
      }
    }
  });
});

describe('key ring and rotation', () => {
  it('decrypts values wrapped under an older key of the ring', () => {
    const before = ring(['k1', k1]);
    const ct = before.encrypt(SSN, aad);
    const after = ring(['k2', k2], ['k1', k1]);
    expect(after.decrypt(ct, aad)).toBe(SSN);
    expect(keyIdOf(after.encrypt(SSN, aad))).toBe('k2');
  });

  it('needsRotation: true for values under any key but the primary', () => {
    const old = ring(['k1', k1]).encrypt(SSN, aad);
    const r = ring(['k2', k2], ['k1', k1]);
    expect(r.needsRotation(old)).toBe(true);
    expect(r.needsRotation(r.encrypt(SSN, aad))).toBe(false);
    expect(r.needsRotation(old.replace('k1', 'gone'))).toBe(true);
    expect(reasonOf(() => r.needsRotation(SSN))).toBe('malformed');
  });

  it('rewrap moves a value to the primary key without its associated data; the old key can then go', () => {
    const old = ring(['k1', k1]).encrypt(SSN, aad);
    const during = ring(['k2', k2], ['k1', k1]);
    const moved = during.rewrap(old);
    expect(keyIdOf(moved)).toBe('k2');
    expect(during.needsRotation(moved)).toBe(false);
    // The sealed value itself is untouched: only the wrapped data key changed.
    expect(parseCiphertext(moved).data.equals(parseCiphertext(old).data)).toBe(true);
    const after = ring(['k2', k2]);
    expect(after.decrypt(moved, aad)).toBe(SSN);
    expect(reasonOf(() => after.decrypt(old, aad))).toBe('unknown-key');
    // The binding to its place survives the move.
    expect(reasonOf(() => after.decrypt(moved, ['tenant-b', 'patient.identifier', 'http://hl7.org/fhir/sid/us-ssn']))).toBe('authentication');
  });

  it('rewrap leaves values already under the primary as they are and refuses tampered ones', () => {
    const r = ring(['k2', k2], ['k1', k1]);
    const current = r.encrypt(SSN, aad);
    expect(r.rewrap(current)).toBe(current);
    const old = ring(['k1', k1]).encrypt(SSN, aad);
    expect(reasonOf(() => r.rewrap(flipPayloadByte(old, 40)))).toBe('authentication');
    expect(reasonOf(() => r.rewrap(old.replace('k1', 'k7')))).toBe('unknown-key');
  });

  it('refuses to build a ring without keys, with duplicate ids or short keys', () => {
    expect(() => createKeyRing({ keys: [], blindIndexKey: indexKey })).toThrow();
    expect(() => ring(['a', k1], ['a', k2])).toThrow();
    expect(() => ring(['a', k1.subarray(0, 16)])).toThrow();
    expect(() => ring(['bad id', k1])).toThrow();
  });

  it('never shows key material when printed or serialized', () => {
    const r = ring(['k2', k2], ['k1', k1]);
    const shown = `${inspect(r, { depth: 10, showHidden: true })} ${JSON.stringify(r)}`;
    for (const key of [k1, k2, indexKey]) {
      for (const encoding of ['base64', 'base64url', 'hex'] as const) expect(shown).not.toContain(key.toString(encoding).slice(0, 16));
    }
    expect(JSON.parse(JSON.stringify(r))).toEqual({ primaryKeyId: 'k2', keyIds: ['k2', 'k1'] });
  });
});

describe('blind index', () => {
  const SYSTEM = 'http://hl7.org/fhir/sid/us-ssn';

  it('is a short prefixed token, the same for the same tenant, system and value', () => {
    const r = ring(['k1', k1]);
    const token = r.blindIndex('tenant-a', SYSTEM, SSN);
    expect(token).toMatch(/^bi1:[A-Za-z0-9_-]{22}$/);
    expect(r.blindIndex('tenant-a', SYSTEM, SSN)).toBe(token);
    expect(token).not.toContain(SSN);
  });

  it('does not change when the encryption keys rotate (only BLIND_INDEX_KEY matters)', () => {
    const before = ring(['k1', k1]).blindIndex('tenant-a', SYSTEM, SSN);
    expect(ring(['k2', k2], ['k1', k1]).blindIndex('tenant-a', SYSTEM, SSN)).toBe(before);
    expect(ring(['k3', k3]).blindIndex('tenant-a', SYSTEM, SSN)).toBe(before);
    const otherIndexKey = createKeyRing({ keys: [{ id: 'k1', key: k1 }], blindIndexKey: randomBytes(32) });
    expect(otherIndexKey.blindIndex('tenant-a', SYSTEM, SSN)).not.toBe(before);
  });

  it('differs per tenant, per system and per value, with no ambiguity between parts', () => {
    const r = ring(['k1', k1]);
    const tokens = [
      r.blindIndex('tenant-a', SYSTEM, SSN),
      r.blindIndex('tenant-b', SYSTEM, SSN),
      r.blindIndex('tenant-a', 'http://hl7.org/fhir/sid/us-medicare', SSN),
      r.blindIndex('tenant-a', SYSTEM, '123456789'),
      r.blindIndex('tenant-a', SYSTEM, '123-45-678'),
      r.blindIndex('ab', 'c', 'd'),
      r.blindIndex('a', 'bc', 'd'),
    ];
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('is HMAC-SHA256 (truncated to 128 bits) under HKDF(BLIND_INDEX_KEY), as documented', () => {
    const derived = Buffer.from(hkdfSync('sha256', indexKey, 'carebase', 'carebase/blind-index/v1', 32));
    const mac = createHmac('sha256', derived).update(encodeParts('carebase/blind-index/v1', ['tenant-a', SYSTEM, SSN])).digest();
    expect(ring(['k1', k1]).blindIndex('tenant-a', SYSTEM, SSN)).toBe(`bi1:${mac.subarray(0, 16).toString('base64url')}`);
  });
});

describe('sensitive identifier systems', () => {
  it('the default list holds the SSN, Medicare and MBI systems', () => {
    expect(DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS).toEqual(
      expect.arrayContaining(['http://hl7.org/fhir/sid/us-ssn', 'http://hl7.org/fhir/sid/us-medicare', 'http://hl7.org/fhir/sid/us-mbi']),
    );
  });

  it('matches systems exactly; an identifier without a system is not sensitive', () => {
    const list = DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS;
    expect(isSensitiveIdentifierSystem('http://hl7.org/fhir/sid/us-ssn', list)).toBe(true);
    expect(isSensitiveIdentifierSystem('http://hl7.org/fhir/sid/us-medicare', list)).toBe(true);
    expect(isSensitiveIdentifierSystem('http://hl7.org/fhir/sid/us-ssn/', list)).toBe(false);
    expect(isSensitiveIdentifierSystem('http://hospital.example/mrn', list)).toBe(false);
    expect(isSensitiveIdentifierSystem(undefined, list)).toBe(false);
    expect(isSensitiveIdentifierSystem('urn:example:member', ['urn:example:member'])).toBe(true);
  });
});
