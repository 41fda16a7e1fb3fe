// Validation of every field of POST /v1/patients: each bad input is 400 VALIDATION_FAILED with a
// `details` entry naming the field, and nothing is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, type Res } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

type Body = Record<string, unknown>;

/** The factory's input without `key` (for "missing field" cases). */
const without = (key: string): Body => {
  const rest: Body = patientInput();
  delete rest[key];
  return rest;
};
const withName = (name: Body) => patientInput({ name });
const withAddress = (over: Body) => patientInput({ address: { city: 'Springfield', ...over } });
const isoDay = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

describe.each(storageModes())('patients validation on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  let seeded: string;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    const res = await api('POST', '/v1/patients', { body: patientInput() });
    expect(res.status).toBe(201);
    seeded = res.body.id;
  });
  afterAll(() => srv?.close());

  /** The ids of every live patient of the tenant (the tests here never create more than a few). */
  async function ids(): Promise<string[]> {
    const res = await api('GET', '/v1/patients?limit=100');
    expect(res.status).toBe(200);
    expect(res.body.page.nextCursor).toBeNull();
    return res.body.data.map((p: { id: string }) => p.id);
  }

  /** POSTs body, expects 400 VALIDATION_FAILED naming every path, and that nothing was stored. */
  async function rejects(body: unknown, ...paths: string[]) {
    const before = await ids();
    const res = await api('POST', '/v1/patients', { body });
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    expect(res.headers.get('location')).toBeNull();
    const got = (err.details ?? []).map((d) => d.path);
    for (const p of paths) expect(got, `details ${JSON.stringify(err.details)}`).toContain(p);
    for (const d of err.details ?? []) expect(typeof d.message).toBe('string');
    expect(await ids()).toEqual(before);
    return err;
  }

  async function accepts(body: Body): Promise<Res> {
    const res = await api('POST', '/v1/patients', { body });
    expect(res.status, res.text).toBe(201);
    return res;
  }

  describe('required fields', () => {
    it.each(['name', 'birthDate', 'gender'])('missing %s', async (field) => {
      const err = await rejects(without(field), `/${field}`);
      expect(err.details?.find((d) => d.path === `/${field}`)?.message).toBe('is required');
    });
    it.each(['given', 'family'])('missing name.%s', async (field) => {
      const name: Body = { given: ['Ana'], family: 'Núñez' };
      delete name[field];
      await rejects(withName(name), `/name/${field}`);
    });
    it('identifier without value or system', async () => {
      await rejects(patientInput({ identifiers: [{ system: 'urn:x' }, { value: 'v' }] }), '/identifiers/0/value', '/identifiers/1/system');
    });
    it('an empty body {}', async () => {
      await rejects({}, '/name', '/birthDate', '/gender');
    });
  });

  describe('birthDate', () => {
    it.each([
      ['slashes', '1984/03/09'],
      ['two-digit year', '84-03-09'],
      ['no zero padding', '1984-3-9'],
      ['a date-time', '1984-03-09T00:00:00Z'],
      ['day first', '09-03-1984'],
      ['free text', 'yesterday'],
      ['empty', ''],
      ['impossible day 2023-02-30', '2023-02-30'],
      ['non-leap Feb 29', '2023-02-29'],
      ['month 13', '2023-13-01'],
      ['day 00', '2023-01-00'],
    ])('%s is refused', async (_what, birthDate) => {
      await rejects(patientInput({ birthDate }), '/birthDate');
    });

    it('in the future is refused (business rule)', async () => {
      const err = await rejects(patientInput({ birthDate: isoDay(3) }), '/birthDate');
      expect(err.details).toEqual([{ path: '/birthDate', message: 'must not be in the future' }]);
      await rejects(patientInput({ birthDate: '2999-12-31' }), '/birthDate');
    });

    it('before 1850 is refused; 1850-01-01 and today are accepted', async () => {
      const err = await rejects(patientInput({ birthDate: '1849-12-31' }), '/birthDate');
      expect(err.details).toEqual([{ path: '/birthDate', message: 'must not be before 1850-01-01' }]);
      expect((await accepts(patientInput({ birthDate: '1850-01-01' }))).body.birthDate).toBe('1850-01-01');
      const today = isoDay(0);
      expect((await accepts(patientInput({ birthDate: today }))).body.birthDate).toBe(today);
      expect((await accepts(patientInput({ birthDate: '2024-02-29' }))).body.birthDate).toBe('2024-02-29');
    });
  });

  describe('gender', () => {
    it.each(['Male', 'FEMALE', 'm', 'x', '', 'nonbinary'])('%j is not in the enum', async (gender) => {
      await rejects(patientInput({ gender }), '/gender');
    });
    it.each(['male', 'female', 'other', 'unknown'])('%s is accepted', async (gender) => {
      expect((await accepts(patientInput({ gender }))).body.gender).toBe(gender);
    });
  });

  describe('name', () => {
    it.each([
      ['given is an empty array', { given: [], family: 'X' }, '/name/given'],
      ['given has an empty string', { given: [''], family: 'X' }, '/name/given/0'],
      ['given is whitespace only', { given: ['   '], family: 'X' }, '/name/given/0'],
      ['given is a tab', { given: ['Ana', '\t'], family: 'X' }, '/name/given/1'],
      ['given has a non-breaking space only', { given: ['\u00a0'], family: 'X' }, '/name/given/0'],
      ['given contains a newline', { given: ['An\na'], family: 'X' }, '/name/given/0'],
      ['given contains a carriage return', { given: ['An\ra'], family: 'X' }, '/name/given/0'],
      ['given contains NUL', { given: ['An\u0000a'], family: 'X' }, '/name/given/0'],
      ['given contains ESC', { given: ['An\u001b[31ma'], family: 'X' }, '/name/given/0'],
      ['given contains DEL', { given: ['An\u007fa'], family: 'X' }, '/name/given/0'],
      ['given has more than 10 names', { given: Array.from({ length: 11 }, (_, i) => `G${i}`), family: 'X' }, '/name/given'],
      ['given is longer than 100', { given: ['a'.repeat(101)], family: 'X' }, '/name/given/0'],
      ['family is empty', { given: ['Ana'], family: '' }, '/name/family'],
      ['family is whitespace only', { given: ['Ana'], family: ' \t ' }, '/name/family'],
      ['family contains NUL', { given: ['Ana'], family: 'Nu\u0000nez' }, '/name/family'],
      ['family is longer than 100', { given: ['Ana'], family: 'b'.repeat(101) }, '/name/family'],
      ['an unknown nested property', { given: ['Ana'], family: 'X', middle: 'Q' }, '/name/middle'],
    ])('%s', async (_what, name, path) => {
      await rejects(withName(name), path);
    });

    it('accepts 10 given names and 100-character names', async () => {
      const name = { given: [...Array.from({ length: 9 }, (_, i) => `G${i}`), 'a'.repeat(100)], family: 'b'.repeat(100) };
      const res = await accepts(withName(name));
      expect((await api('GET', `/v1/patients/${res.body.id}`)).body.name).toEqual(name);
    });
  });

  describe('identifiers', () => {
    it.each([
      ['a bare word', 'mrn'],
      ['words with spaces', 'not a uri'],
      ['empty', ''],
      ['a relative path', '/mrn/system'],
      ['longer than 255', `urn:${'x'.repeat(260)}`],
    ])('system as %s is refused', async (_what, system) => {
      await rejects(patientInput({ identifiers: [{ system, value: 'V-1' }] }), '/identifiers/0/system');
    });
    it('the index in the path points at the bad identifier', async () => {
      await rejects(patientInput({ identifiers: [{ system: 'urn:ok', value: 'A' }, { system: 'urn:ok', value: 'B' }, { system: 'bad system', value: 'C' }] }), '/identifiers/2/system');
    });
    it.each([
      ['empty', ''],
      ['whitespace', '  '],
      ['with a newline', 'A\nB'],
    ])('value %s is refused', async (_what, value) => {
      await rejects(patientInput({ identifiers: [{ system: 'urn:ok', value }] }), '/identifiers/0/value');
    });
    it('an unknown identifier property and too many identifiers are refused', async () => {
      await rejects(patientInput({ identifiers: [{ system: 'urn:ok', value: 'A', type: 'MR' }] }), '/identifiers/0/type');
      await rejects(patientInput({ identifiers: Array.from({ length: 21 }, (_, i) => ({ system: 'urn:ok', value: `V${i}` })) }), '/identifiers');
    });
    it('accepts http(s) and urn systems', async () => {
      const identifiers = [
        { system: 'https://hospital.example.org/mrn', value: 'H-1' },
        { system: 'urn:oid:2.16.840.1.113883.4.1', value: '123-45-6789' },
      ];
      expect((await accepts(patientInput({ identifiers }))).body.identifiers).toEqual(identifiers);
    });
  });

  describe('contact details', () => {
    it.each(['not-an-email', 'a@', '@example.org', 'a b@example.org', 'ana@@example.org', '', `${'a'.repeat(250)}@example.org`])('email %j is refused', async (email) => {
      await rejects(patientInput({ email }), '/email');
    });
    it.each(['call me', '12', '+', '++1 555 0100', '555-0100 ext. 4', '+1 555 0100\n', `+${'1'.repeat(40)}`, ''])('phone %j is refused', async (phone) => {
      await rejects(patientInput({ phone }), '/phone');
    });
    it.each(['', '!!!', '-12345', ' 12345', '1234567890123456789012', '62701\n', 'ÄÖÜ 12'])('postalCode %j is refused', async (postalCode) => {
      await rejects(withAddress({ postalCode }), '/address/postalCode');
    });
    it.each([
      ['city empty', { city: '' }, '/address/city'],
      ['city with a newline', { city: 'Spring\nfield' }, '/address/city'],
      ['too many lines', { line: ['1', '2', '3', '4', '5'] }, '/address/line'],
      ['a blank line', { line: ['1 Main St', ' '] }, '/address/line/1'],
      ['an unknown property', { planet: 'Mars' }, '/address/planet'],
    ])('address: %s', async (_what, over, path) => {
      await rejects(withAddress(over), path);
    });
    it('accepts well-formed contact details', async () => {
      const body = patientInput({ email: 'o.brien+test@example.co.uk', phone: '+44 (20) 7946-0958', address: { postalCode: 'SW1A 1AA', country: 'GB' } });
      const res = await accepts(body);
      expect(res.body).toMatchObject({ email: 'o.brien+test@example.co.uk', phone: '+44 (20) 7946-0958', address: { postalCode: 'SW1A 1AA', country: 'GB' } });
    });
    it.each(['(555) 010-2030', '555.010.2030', '+1 555 0100'])('accepts the phone format %j', async (phone) => {
      expect((await accepts(patientInput({ phone }))).body.phone).toBe(phone);
    });
  });

  describe('unknown properties and wrong types (no coercion in bodies)', () => {
    it.each([
      ['unknown top-level property', { ssn: '123-45-6789' }, '/ssn'],
      ['server-managed id', { id: '01890a5d-ac96-774b-bcce-b302099a8057' }, '/id'],
      ['server-managed version', { version: 3 }, '/version'],
      ['server-managed createdAt', { createdAt: '2020-01-01T00:00:00.000Z' }, '/createdAt'],
    ])('%s', async (_what, over, path) => {
      await rejects(patientInput(over), path);
    });
    it.each([
      ['birthDate as a number', { birthDate: 19840309 }, '/birthDate'],
      ['gender as a number', { gender: 1 }, '/gender'],
      ['family as a number', { name: { given: ['Ana'], family: 42 } }, '/name/family'],
      ['given as a string', { name: { given: 'Ana', family: 'X' } }, '/name/given'],
      ['given item as a number', { name: { given: [7], family: 'X' } }, '/name/given/0'],
      ['name as a string', { name: 'Ana Núñez' }, '/name'],
      ['active as the string "true"', { active: 'true' }, '/active'],
      ['active as 1', { active: 1 }, '/active'],
      ['identifiers as an object', { identifiers: { system: 'urn:x', value: 'y' } }, '/identifiers'],
      ['identifier value as a number', { identifiers: [{ system: 'urn:x', value: 12345 }] }, '/identifiers/0/value'],
      ['email as a number', { email: 42 }, '/email'],
      ['phone as a number', { phone: 5550100 }, '/phone'],
      ['postalCode as a number', { address: { postalCode: 62701 } }, '/address/postalCode'],
      ['address as an array', { address: ['1 Main St'] }, '/address'],
      ['email as null', { email: null }, '/email'],
    ])('%s', async (_what, over, path) => {
      await rejects(patientInput(over), path);
    });
    it('a body that is not an object', async () => {
      for (const body of [[], 'patient', 42, null]) await rejects(body, '/');
    });
  });

  it('one request with many problems lists ALL of them in details', async () => {
    const err = await rejects(
      {
        name: { given: ['', 'Ok', 'Bad\u0000'], family: '   ', middle: 'Q' },
        birthDate: '2023-02-30',
        gender: 'x',
        identifiers: [{ system: 'not a uri', value: '' }],
        email: 'nope',
        phone: 'call me',
        address: { postalCode: '!!', city: 5 },
        active: 'yes',
        ssn: '123',
      },
      '/name/given/0',
      '/name/given/2',
      '/name/family',
      '/name/middle',
      '/birthDate',
      '/gender',
      '/identifiers/0/system',
      '/identifiers/0/value',
      '/email',
      '/phone',
      '/address/postalCode',
      '/address/city',
      '/active',
      '/ssn',
    );
    // and nothing it did not ask about
    const paths = new Set(err.details?.map((d) => d.path));
    expect(paths.has('/name/given/1')).toBe(false);
  });

  it('error messages never echo the submitted values (no PHI in messages)', async () => {
    const secret = 'Zq7SecretValue';
    const res = await api('POST', '/v1/patients', {
      body: {
        name: { given: [`${secret}\u0000`], family: `${secret}\n` },
        birthDate: `${secret}-01-01`,
        gender: secret,
        identifiers: [{ system: `${secret} sys`, value: `${secret}\n` }],
        email: `${secret}@@x`,
        phone: `${secret}`,
        address: { postalCode: `${secret}!`, city: `${secret}\u0007` },
      },
    });
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    expect(err.details?.length).toBeGreaterThanOrEqual(8);
    expect(res.text).not.toContain(secret);
  });

  describe('transport errors', () => {
    it('unparsable JSON is 400 MALFORMED_REQUEST without echoing the body', async () => {
      const before = await ids();
      const res = await api('POST', '/v1/patients', { raw: '{"name": {"family": "LeakyMcLeak"', headers: { 'content-type': 'application/json' } });
      expectError(res, 400, 'MALFORMED_REQUEST');
      expect(res.text).not.toContain('LeakyMcLeak');
      expect(await ids()).toEqual(before);
    });
    it('an empty JSON body is 400 MALFORMED_REQUEST', async () => {
      expectError(await api('POST', '/v1/patients', { raw: '', headers: { 'content-type': 'application/json' } }), 400, 'MALFORMED_REQUEST');
    });
    it('a non-JSON content type is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const before = await ids();
      for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        expectError(await api('POST', '/v1/patients', { raw: JSON.stringify(patientInput()), headers: { 'content-type': ct } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      }
      expect(await ids()).toEqual(before);
    });
    it('a __proto__ key is refused, not merged', async () => {
      const res = await api('POST', '/v1/patients', { raw: `{"__proto__": {"admin": true}, ${JSON.stringify(patientInput()).slice(1)}`, headers: { 'content-type': 'application/json' } });
      expectError(res, 400, 'MALFORMED_REQUEST');
    });
  });

  it('the seeded patient is still there and untouched', async () => {
    expect(await ids()).toContain(seeded);
  });
});
