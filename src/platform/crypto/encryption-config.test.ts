// ENCRYPTION_KEYS, BLIND_INDEX_KEY and ENCRYPTED_IDENTIFIER_SYSTEMS through loadConfig with an
// explicit environment: each mistake is one problem line naming its variable and never quoting
// key material; production refuses to start without keys.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { configProblems } from '../../../test/helpers/config.js';
import { DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS } from './sensitive-identifiers.js';

const b64 = (bytes: Buffer) => bytes.toString('base64');
const k1 = randomBytes(32);
const k2 = randomBytes(32);
const bi = randomBytes(32);
const valid = { ENCRYPTION_KEYS: `k2:${b64(k2)},k1:${b64(k1)}`, BLIND_INDEX_KEY: b64(bi) };

/** Everything production needs except the variables under test. */
const production = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://u@db.example:5432/carebase',
  AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
  AUTH_ISSUER: 'https://idp.example',
  AUTH_AUDIENCE: 'carebase',
  AUDIT_HMAC_KEY: b64(randomBytes(32)),
};

/** Asserts one problem line per listed variable, each naming it first; returns the lines. */
function expectProblems(env: Record<string, string>, variables: string[]): string[] {
  const problems = configProblems(env);
  expect(problems.map((p) => /^([A-Z_]+): \S/.exec(p)?.[1] ?? p).sort()).toEqual([...variables].sort());
  for (const p of problems) expect(p).not.toContain('\n');
  return problems;
}

/** 32 bytes built from a pattern, base64. */
const bytes = (f: (i: number) => number) => b64(Buffer.from(Array.from({ length: 32 }, (_, i) => f(i) & 0xff)));

describe('field encryption configuration', () => {
  it('loads the keys in order (first = primary), the blind index key and the default systems', () => {
    const c = loadConfig({ ...valid, DATA_DIR: '/tmp/x' });
    expect(c.encryption.keys?.map((k) => k.id)).toEqual(['k2', 'k1']);
    expect(c.encryption.keys?.[0]?.key.equals(k2)).toBe(true);
    expect(c.encryption.blindIndexKey?.equals(bi)).toBe(true);
    expect(c.encryption.keyDir).toBe('/tmp/x/keys');
    expect(c.encryption.identifierSystems).toEqual(DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS);
    expect(c.encryption.identifierSystems).toEqual(expect.arrayContaining(['http://hl7.org/fhir/sid/us-ssn', 'http://hl7.org/fhir/sid/us-medicare']));
  });

  it('accepts url-safe base64 without padding and spaces around entries', () => {
    const c = loadConfig({ ENCRYPTION_KEYS: ` a_1:${k1.toString('base64url')} , B-2:${b64(k2)} `, BLIND_INDEX_KEY: bi.toString('base64url') });
    expect(c.encryption.keys?.map((k) => k.id)).toEqual(['a_1', 'B-2']);
    expect(c.encryption.keys?.[0]?.key.equals(k1)).toBe(true);
  });

  it('outside production, both unset (or empty) → no keys in config: the development ring is used', () => {
    for (const env of [{}, { ENCRYPTION_KEYS: '', BLIND_INDEX_KEY: '' }, { NODE_ENV: 'test' }]) {
      const c = loadConfig(env);
      expect(c.encryption.keys).toBeUndefined();
      expect(c.encryption.blindIndexKey).toBeUndefined();
    }
  });

  it('production without keys → ENCRYPTION_KEYS and BLIND_INDEX_KEY are each named', () => {
    const problems = expectProblems(production, ['ENCRYPTION_KEYS', 'BLIND_INDEX_KEY']);
    expect(problems.join('\n')).toMatch(/ENCRYPTION_KEYS: is required when NODE_ENV=production/);
    expectProblems({ ...production, ENCRYPTION_KEYS: valid.ENCRYPTION_KEYS }, ['BLIND_INDEX_KEY']);
    expectProblems({ ...production, BLIND_INDEX_KEY: valid.BLIND_INDEX_KEY }, ['ENCRYPTION_KEYS']);
    expect(loadConfig({ ...production, ...valid }).encryption.keys?.length).toBe(2);
  });

  it('one of the pair without the other is refused in development too', () => {
    expectProblems({ ENCRYPTION_KEYS: valid.ENCRYPTION_KEYS }, ['BLIND_INDEX_KEY']);
    expectProblems({ BLIND_INDEX_KEY: valid.BLIND_INDEX_KEY }, ['ENCRYPTION_KEYS']);
  });

  it.each([
    ['no id', b64(k1)],
    ['an empty id', `:${b64(k1)}`],
    ['an id with a space', `k 1:${b64(k1)}`],
    ['an id longer than 32', `${'k'.repeat(33)}:${b64(k1)}`],
    ['an empty entry', `k1:${b64(k1)},`],
    ['not base64', `k1:${'!'.repeat(44)}`],
    ['16 bytes', `k1:${b64(randomBytes(16))}`],
    ['31 bytes', `k1:${b64(randomBytes(31))}`],
    ['33 bytes', `k1:${b64(randomBytes(33))}`],
    ['64 bytes', `k1:${b64(randomBytes(64))}`],
    ['all zero bytes', `k1:${bytes(() => 0)}`],
    ['one repeated byte', `k1:${bytes(() => 0xab)}`],
    ['15 distinct byte values', `k1:${bytes((i) => i % 15)}`],
    ['a passphrase', `k1:${b64(Buffer.from('Pack my box with five dozen jugs'))}`],
    ['a duplicate id', `k1:${b64(k1)},k1:${b64(k2)}`],
    ['the same key under two ids', `k1:${b64(k1)},k2:${b64(k1)}`],
    ['a bad second entry', `k2:${b64(k2)},k1:short`],
  ])('ENCRYPTION_KEYS with %s → one problem naming it, quoting no key material', (_what, value) => {
    const [line] = expectProblems({ ENCRYPTION_KEYS: value, BLIND_INDEX_KEY: valid.BLIND_INDEX_KEY }, ['ENCRYPTION_KEYS']);
    for (const part of value.split(/[,:]/).filter((p) => p.length >= 8)) expect(line).not.toContain(part.trim());
    for (const key of [k1, k2]) expect(line).not.toContain(b64(key).slice(0, 12));
  });

  it('says why a key is weak', () => {
    const lineFor = (key: string) => configProblems({ ENCRYPTION_KEYS: `k1:${key}`, BLIND_INDEX_KEY: valid.BLIND_INDEX_KEY })[0];
    expect(lineFor(bytes(() => 0))).toMatch(/weak.*all zero/);
    expect(lineFor(bytes(() => 7))).toMatch(/weak.*single byte/);
    expect(lineFor(bytes((i) => i % 15))).toMatch(/weak.*fewer than 16 distinct/);
    expect(lineFor(b64(Buffer.from('Pack my box with five dozen jugs')))).toMatch(/weak.*printable text/);
    expect(lineFor(b64(randomBytes(16)))).toMatch(/exactly 32/);
  });

  it('several bad entries are still one line', () => {
    const [line] = expectProblems({ ENCRYPTION_KEYS: `a:${bytes(() => 0)},b:short,c c:${b64(k1)}`, BLIND_INDEX_KEY: valid.BLIND_INDEX_KEY }, ['ENCRYPTION_KEYS']);
    expect(line).toMatch(/"a".*weak.*"b".*32.*entry 3/);
  });

  it.each([
    ['16 bytes', b64(randomBytes(16))],
    ['not base64', 'not a key at all, but long enough to pass a length check'],
    ['all zero bytes', bytes(() => 0)],
    ['15 distinct byte values', bytes((i) => i % 15)],
  ])('BLIND_INDEX_KEY with %s → one problem naming it', (_what, value) => {
    const [line] = expectProblems({ ENCRYPTION_KEYS: valid.ENCRYPTION_KEYS, BLIND_INDEX_KEY: value }, ['BLIND_INDEX_KEY']);
    expect(line).not.toContain(value.slice(0, 12));
  });

  it('BLIND_INDEX_KEY equal to an encryption key → refused (one purpose per key)', () => {
    expectProblems({ ENCRYPTION_KEYS: valid.ENCRYPTION_KEYS, BLIND_INDEX_KEY: b64(k1) }, ['BLIND_INDEX_KEY']);
  });

  it('bad keys are reported together with other problems', () => {
    expectProblems({ ...production, ENCRYPTION_KEYS: 'k1:short', PORT: 'abc' }, ['ENCRYPTION_KEYS', 'BLIND_INDEX_KEY', 'PORT']);
  });

  it('ENCRYPTED_IDENTIFIER_SYSTEMS replaces the default list (trimmed, de-duplicated)', () => {
    const c = loadConfig({ ENCRYPTED_IDENTIFIER_SYSTEMS: ' urn:oid:2.16.840.1.113883.4.1, http://example.org/insurer-member ,urn:oid:2.16.840.1.113883.4.1' });
    expect(c.encryption.identifierSystems).toEqual(['urn:oid:2.16.840.1.113883.4.1', 'http://example.org/insurer-member']);
  });

  it.each([['ssn'], [' , '], ['http://hl7.org/fhir/sid/us-ssn,not a uri']])('ENCRYPTED_IDENTIFIER_SYSTEMS=%j → one problem naming it', (value) => {
    expectProblems({ ENCRYPTED_IDENTIFIER_SYSTEMS: value }, ['ENCRYPTED_IDENTIFIER_SYSTEMS']);
  });
});
