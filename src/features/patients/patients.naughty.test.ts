// The Big List of Naughty Strings as patient names and cities: every one is either stored and
// read back byte-for-byte, or refused with 400 VALIDATION_FAILED on that field; never a 500.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, type Client, type Res } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const BLNS = fileURLToPath(new URL('../../../../shared/fixtures/bad-input/blns.json', import.meta.url));
const HAVE_BLNS = existsSync(BLNS);
const strings: string[] = HAVE_BLNS ? (JSON.parse(readFileSync(BLNS, 'utf8')) as string[]) : [];

const CHUNK = 25;

/** What the schema's single-line text rule (Line(100)) admits: a visible character, no control characters, at most 100 code points. */
const isValidLine = (s: string) => /\S/u.test(s) && !/[\u0000-\u001f\u007f]/u.test(s) && [...s].length <= 100;

interface Outcome {
  value: string;
  status: number;
  problem?: string;
}

const suite = HAVE_BLNS ? describe : describe.skip;
const title = HAVE_BLNS ? 'patients naughty strings on %s' : `patients naughty strings on %s — SKIPPED: fixture ${BLNS} is missing`;

suite.each(storageModes())(title, (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
  });
  afterAll(() => srv?.close());

  let stored = 0;

  /**
   * POSTs build(value) and checks the contract for one string: 201 and an exact round trip through
   * GET (read back with `read`), or 400 VALIDATION_FAILED naming `path`. Returns what went wrong, if anything.
   */
  async function tryOne(value: string, build: (v: string) => unknown, read: (p: any) => unknown, path: string): Promise<Outcome> {
    const res = await api('POST', '/v1/patients', { body: build(value) });
    if (res.status === 201) {
      stored += 1;
      if (read(res.body) !== value) return { value, status: 201, problem: `POST echoed ${JSON.stringify(read(res.body))}` };
      const got = await api('GET', `/v1/patients/${res.body.id}`);
      if (got.status !== 200) return { value, status: 201, problem: `GET returned ${got.status}` };
      if (read(got.body) !== value) return { value, status: 201, problem: `GET returned ${JSON.stringify(read(got.body))}` };
      if (!isValidLine(value)) return { value, status: 201, problem: 'accepted although it is not a valid single line' };
      return { value, status: 201 };
    }
    if (res.status === 400 && res.body?.error?.code === 'VALIDATION_FAILED') {
      const paths: string[] = (res.body.error.details ?? []).map((d: { path: string }) => d.path);
      if (!paths.includes(path)) return { value, status: 400, problem: `details do not name ${path}: ${JSON.stringify(paths)}` };
      if (isValidLine(value)) return { value, status: 400, problem: 'refused although it is a valid single line' };
      return { value, status: 400 };
    }
    return { value, status: res.status, problem: `unexpected ${res.status} ${res.text.slice(0, 200)}` };
  }

  async function runAll(values: string[], build: (v: string) => unknown, read: (p: any) => unknown, path: string) {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < values.length; i += CHUNK) {
      outcomes.push(...(await Promise.all(values.slice(i, i + CHUNK).map((v) => tryOne(v, build, read, path)))));
    }
    return outcomes;
  }

  it('the fixture is a non-empty array of strings', () => {
    expect(strings.length).toBeGreaterThan(100);
    expect(strings.every((s) => typeof s === 'string')).toBe(true);
  });

  it('every naughty string as name.family is stored exactly or refused with 400 on /name/family', async () => {
    const outcomes = await runAll(
      strings,
      (v) => patientInput({ name: { given: ['Naughty'], family: v } }),
      (p) => p?.name?.family,
      '/name/family',
    );
    const problems = outcomes.filter((o) => o.problem).map((o) => `${JSON.stringify(o.value)} → ${o.status}: ${o.problem}`);
    expect(problems, problems.join('\n')).toEqual([]);
    expect(outcomes).toHaveLength(strings.length);
    // the fixture has both kinds: most strings are fine names, some (empty, blank, control characters, too long) are not
    expect(outcomes.filter((o) => o.status === 201).length).toBe(strings.filter(isValidLine).length);
    expect(outcomes.filter((o) => o.status === 400).length).toBe(strings.filter((s) => !isValidLine(s)).length);
    expect(outcomes.filter((o) => o.status === 400).length).toBeGreaterThan(0);
  }, 240_000);

  it('a sample of naughty strings as address.city is stored exactly or refused with 400 on /address/city', async () => {
    const sample = strings.filter((_, i) => i % 8 === 0);
    const outcomes = await runAll(
      sample,
      (v) => patientInput({ address: { city: v, country: 'US' } }),
      (p) => p?.address?.city,
      '/address/city',
    );
    const problems = outcomes.filter((o) => o.problem).map((o) => `${JSON.stringify(o.value)} → ${o.status}: ${o.problem}`);
    expect(problems, problems.join('\n')).toEqual([]);
    expect(outcomes.filter((o) => o.status === 201).length).toBe(sample.filter(isValidLine).length);
  }, 120_000);

  it('the tenant holds exactly the patients that were accepted (refusals stored nothing)', async () => {
    let count = 0;
    let cursor: string | null = null;
    do {
      const res: Res = await api('GET', `/v1/patients?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      count += res.body.data.length;
      cursor = res.body.page.nextCursor;
    } while (cursor);
    expect(stored).toBeGreaterThan(0);
    expect(count).toBe(stored);
  }, 60_000);

  it('naughty strings as a search term never cause a 500', async () => {
    const sample = strings.filter((_, i) => i % 4 === 0);
    const bad: string[] = [];
    for (let i = 0; i < sample.length; i += CHUNK) {
      const results = await Promise.all(
        sample.slice(i, i + CHUNK).map(async (v) => ({ v, res: await api('GET', `/v1/patients?name=${encodeURIComponent(v)}&limit=5`) })),
      );
      for (const { v, res } of results) {
        const ok = res.status === 200 ? Array.isArray(res.body?.data) : res.status === 400 && res.body?.error?.code === 'VALIDATION_FAILED';
        if (!ok) bad.push(`${JSON.stringify(v)} → ${res.status} ${res.text.slice(0, 200)}`);
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
  }, 120_000);
});
