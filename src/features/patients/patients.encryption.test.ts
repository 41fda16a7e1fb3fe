// Field encryption of patients' sensitive identifiers, end to end: the API shows plaintext, while
// the row, the cache and idempotency records hold only ciphertext and blind indexes; search by
// identifier still works; `keys rotate` moves every value to the new primary key online, after
// which a ring without the old key reads everything; a value that does not decrypt is a bare 500.
// Keys are generated per run: none is ever committed.
import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../../auth/principal.js';
import type { Ctx, FieldKeys } from '../../context.js';
import { createKeyRing, DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS } from '../../platform/crypto/index.js';
import { rotateKeys } from '../keys/keys.rotate.js';
import { noResourceCache, resourceCacheKey } from '../shared/resource-cache.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, ifMatch, type Client } from '../../../test/helpers/http.js';
import { cleanupDirs, cliEnv, killAll, migratedDataDir, runCli } from '../../../test/helpers/process.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { getPatient, listPatients } from './patients.service.js';

const SSN = 'http://hl7.org/fhir/sid/us-ssn';
const MEDICARE = 'http://hl7.org/fhir/sid/us-medicare';
const MRN = 'urn:example:mrn';

const newSsn = () => `${randomInt(100, 900)}-${String(randomInt(10, 100))}-${String(randomInt(1000, 10_000))}`;
/** Every way the SSN could be written down: as given and as bare digits. */
const formsOf = (ssn: string) => [ssn, ssn.replace(/-/g, '')];
const b64 = (b: Buffer) => b.toString('base64');

describe.each(storageModes())('patient identifier encryption on %s', (mode) => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const indexKey = randomBytes(32);
  const ring = (...keys: [string, Buffer][]): FieldKeys => ({
    ...createKeyRing({ keys: keys.map(([id, key]) => ({ id, key })), blindIndexKey: indexKey }),
    identifierSystems: DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS,
  });

  let srv: TestServer;
  let tenant: string;
  let api: Client;

  beforeAll(async () => {
    srv = await startServer(mode, { ENCRYPTION_KEYS: `k1:${b64(k1)}`, BLIND_INDEX_KEY: b64(indexKey) });
  });
  afterAll(() => srv?.close());

  const freshTenant = async () => {
    tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
  };

  /** The stored identifiers of a patient, read as the owner (no application code in between). */
  const storedText = async (id: string) => {
    const [row] = await srv.deps.db.withOwner((s) => s.query<{ t: string }>('select identifiers::text as t from patients where tenant_id = $1 and id = $2', [tenant, id]));
    return row!.t;
  };
  const tenantRowsText = async () =>
    (await srv.deps.db.withOwner((s) => s.query<{ t: string }>('select identifiers::text as t from patients where tenant_id = $1 order by id', [tenant]))).map((r) => r.t).join('\n');
  const setStored = (id: string, identifiers: unknown) =>
    srv.deps.db.withOwner((s) => s.query('update patients set identifiers = $1::jsonb where tenant_id = $2 and id = $3', [JSON.stringify(identifiers), tenant, id]));
  const expectNoPlaintext = (text: string, ssn: string) => {
    for (const form of formsOf(ssn)) expect(text).not.toContain(form);
  };
  const create = async (ssn: string, over: Record<string, unknown> = {}) => {
    const res = await api('POST', '/v1/patients', { body: patientInput({ identifiers: [{ system: SSN, value: ssn }, { system: MRN, value: `MRN-${ssn}` }], ...over }) });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; version: number; identifiers: { system: string; value: string }[] };
  };
  const search = async (identifier: string) => {
    const res = await api('GET', `/v1/patients?identifier=${encodeURIComponent(identifier)}`);
    expect(res.status, res.text).toBe(200);
    return (res.body.data as { id: string }[]).map((p) => p.id);
  };

  describe('with one key', () => {
    beforeAll(freshTenant);

    it('the API shows the identifiers as given; the row holds only ciphertext and a blind index for the SSN, the MRN in plaintext', async () => {
      const ssn = newSsn();
      const p = await create(ssn);
      const expected = [{ system: SSN, value: ssn }, { system: MRN, value: `MRN-${ssn}` }];
      expect(p.identifiers).toEqual(expected);
      expect((await api('GET', `/v1/patients/${p.id}`)).body.identifiers).toEqual(expected);
      const stored = await storedText(p.id);
      expectNoPlaintext(stored.replace(`MRN-${ssn}`, ''), ssn);
      expect(stored).toContain('enc:v1:k1:');
      expect(stored).toContain('bi1:');
      expect(stored).toContain(`"MRN-${ssn}"`);
      const parsed = JSON.parse(stored) as { system: string; value: string; valueIndex?: string }[];
      expect(parsed.map((i) => [i.system, i.valueIndex !== undefined])).toEqual([[SSN, true], [MRN, false]]);
    });

    it('search: system|value and value alone find the encrypted SSN; another SSN, or the same under another system, does not', async () => {
      const ssn = newSsn();
      const p = await create(ssn);
      expect(await search(`${SSN}|${ssn}`)).toEqual([p.id]);
      expect(await search(ssn)).toEqual([p.id]);
      expect(await search(`${SSN}|${newSsn()}`)).toEqual([]);
      expect(await search(newSsn())).toEqual([]);
      expect(await search(`${MEDICARE}|${ssn}`)).toEqual([]);
      expect(await search(`${MRN}|MRN-${ssn}`)).toEqual([p.id]);
      expect(await search(`MRN-${ssn}`)).toEqual([p.id]);
    });

    it('the cache entry holds the stored form: ciphertext, no plaintext SSN', async () => {
      const ssn = newSsn();
      const p = await create(ssn);
      expect((await api('GET', `/v1/patients/${p.id}`)).status).toBe(200);
      const entry = await srv.deps.cache.get(resourceCacheKey(tenant, 'patients', p.id));
      expect(entry?.version).toBe(1);
      const text = JSON.stringify(entry);
      expectNoPlaintext(text.replace(`MRN-${ssn}`, ''), ssn);
      expect(text).toContain('enc:v1:k1:');
    });

    it('an Idempotency-Key record holds the body encrypted (and no plain hash of it); the replay is the first answer, plaintext', async () => {
      const ssn = newSsn();
      const body = patientInput({ identifiers: [{ system: SSN, value: ssn }] });
      const first = await api('POST', '/v1/patients', { body, headers: { 'idempotency-key': 'enc-1' } });
      expect(first.status).toBe(201);
      const [record] = await srv.deps.db.withOwner((s) =>
        s.query<{ body: string; fingerprint: string }>("select body::text as body, fingerprint from idempotency_keys where tenant_id = $1 and key = 'enc-1'", [tenant]),
      );
      expectNoPlaintext(record!.body, ssn);
      expect(record!.body).toMatch(/^"enc:v1:k1:/);
      expect(record!.fingerprint).toMatch(/^bi1:/);
      const replay = await api('POST', '/v1/patients', { body, headers: { 'idempotency-key': 'enc-1' } });
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotency-replayed')).toBe('true');
      expect(replay.text).toBe(first.text);
      expect(replay.body.identifiers).toEqual([{ system: SSN, value: ssn }]);

      // A record from before bodies were encrypted (plaintext) is replayed as it is.
      await srv.deps.db.withOwner((s) => s.query("update idempotency_keys set body = $1::jsonb where tenant_id = $2 and key = 'enc-1'", [first.text, tenant]));
      const legacy = await api('POST', '/v1/patients', { body, headers: { 'idempotency-key': 'enc-1' } });
      expect(legacy.headers.get('idempotency-replayed')).toBe('true');
      expect(legacy.body).toEqual(first.body);
    });

    it('PATCH of another field keeps the SSN (re-encrypted); PATCH replacing the identifiers encrypts the new one; replays stay plaintext', async () => {
      const ssn = newSsn();
      const p = await create(ssn);
      const before = await storedText(p.id);
      const patched = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 4444' }, headers: ifMatch(1) });
      expect(patched.status, patched.text).toBe(200);
      expect(patched.body.identifiers[0]).toEqual({ system: SSN, value: ssn });
      expect((await api('GET', `/v1/patients/${p.id}`)).body.identifiers[0]).toEqual({ system: SSN, value: ssn });
      const after = await storedText(p.id);
      expect(after).not.toBe(before); // a fresh data key and IVs at each write
      expectNoPlaintext(after.replace(`MRN-${ssn}`, ''), ssn);

      const next = newSsn();
      const headers = { ...ifMatch(2), 'idempotency-key': 'enc-patch' };
      const replaced = await api('PATCH', `/v1/patients/${p.id}`, { body: { identifiers: [{ system: SSN, value: next }] }, headers });
      expect(replaced.status, replaced.text).toBe(200);
      expect(replaced.body.identifiers).toEqual([{ system: SSN, value: next }]);
      const replay = await api('PATCH', `/v1/patients/${p.id}`, { body: { identifiers: [{ system: SSN, value: next }] }, headers });
      expect(replay.headers.get('idempotency-replayed')).toBe('true');
      expect(replay.text).toBe(replaced.text);
      const stored = await storedText(p.id);
      expectNoPlaintext(stored, next);
      expectNoPlaintext(stored, ssn);
      expect(stored).toContain('enc:v1:k1:');
      expect(await search(`${SSN}|${next}`)).toEqual([p.id]);
      expect(await search(`${SSN}|${ssn}`)).toEqual([]);
    });

    it('a stored value that does not decrypt is a bare 500 INTERNAL: no ciphertext or SSN in the answer or the logs', async () => {
      const ssn = newSsn();
      const p = await create(ssn);
      const [stored] = JSON.parse(await storedText(p.id)) as { system: string; value: string; valueIndex: string }[];
      const payload = stored!.value.slice(-10);
      const tampered = `${stored!.value.slice(0, -10)}${payload[0] === 'A' ? 'B' : 'A'}${payload.slice(1)}`;
      await setStored(p.id, [{ ...stored, value: tampered }]);
      await srv.deps.cache.delete(resourceCacheKey(tenant, 'patients', p.id));
      const logsBefore = srv.logs.length;
      for (const res of [await api('GET', `/v1/patients/${p.id}`), await api('GET', `/v1/patients?identifier=${encodeURIComponent(`${SSN}|${ssn}`)}`)]) {
        const err = expectError(res, 500, 'INTERNAL');
        expect(err.details).toBeUndefined();
        expect(res.text).not.toContain(tampered);
        expect(res.text).not.toContain('enc:v1');
        expectNoPlaintext(res.text, ssn);
      }
      await new Promise((r) => setTimeout(r, 100));
      const logs = srv.logs.slice(logsBefore).join('\n');
      expect(logs).toContain('could not be decrypted');
      expect(logs).not.toContain(tampered);
      expect(logs).not.toContain('enc:v1:k1:');
      expectNoPlaintext(logs, ssn);
    });
  });

  describe('keys rotate', () => {
    const ssns: string[] = [];
    const ids: string[] = [];
    const ctxWith = (keys: FieldKeys): Ctx => ({
      principal: systemPrincipal(tenant),
      tenantId: tenant,
      requestId: 'rotation-test',
      now: () => new Date(),
      db: srv.deps.db,
      log: srv.deps.log,
      cache: noResourceCache, // straight from the rows
      audit: srv.deps.audit,
      keys,
    });
    /** Every patient through the service with this ring: by id, by list, and by SSN search. */
    const readAll = async (keys: FieldKeys) => {
      const ctx = ctxWith(keys);
      for (const [i, id] of ids.entries()) {
        expect((await getPatient(ctx, id)).identifiers[0]).toEqual({ system: SSN, value: ssns[i] });
        expect((await listPatients(ctx, { identifier: `${SSN}|${ssns[i]}` })).data.map((p) => p.id)).toEqual([id]);
      }
      const listed = (await listPatients(ctx, { limit: 100 })).data.flatMap((p) => p.identifiers.filter((i) => i.system === SSN).map((i) => i.value));
      expect(listed.sort()).toEqual([...ssns].sort());
    };
    const old = () => ring(['k1', k1]);
    const both = () => ring(['k2', k2], ['k1', k1]);
    const onlyNew = () => ring(['k2', k2]);

    beforeAll(async () => {
      await freshTenant();
      for (let i = 0; i < 5; i++) {
        const ssn = newSsn();
        ssns.push(ssn);
        ids.push((await create(ssn)).id);
      }
      expect((await api('POST', '/v1/patients', { body: patientInput(), headers: { 'idempotency-key': 'before-rotation' } })).status).toBe(201);
    });

    it('re-wraps every value under the new primary in batches, online: reads work before, during and after; then the old key can go', async () => {
      await readAll(old());
      await readAll(both());
      await expect(getPatient(ctxWith(onlyNew()), ids[0]!)).rejects.toMatchObject({ code: 'INTERNAL' });

      // Stopped after the first batch of two: half rotated, everything still readable.
      const stop = new AbortController();
      const cache = srv.deps.cache;
      const cached = async () => (await Promise.all(ids.map((id) => cache.get(resourceCacheKey(tenant, 'patients', id))))).filter(Boolean).length;
      expect(await cached()).toBe(5);
      const partial = await rotateKeys(srv.deps.db, both(), [tenant], { batchSize: 2, cache, signal: stop.signal, onBatch: () => stop.abort() });
      expect(partial).toMatchObject({ complete: false, ok: false, rotated: 2, failed: 0 });
      const mixed = await tenantRowsText();
      expect(mixed).toContain('enc:v1:k1:');
      expect(mixed).toContain('enc:v1:k2:');
      await readAll(both());

      const done = await rotateKeys(srv.deps.db, both(), [tenant], { batchSize: 2, cache });
      expect(done).toMatchObject({ complete: true, ok: true, primaryKeyId: 'k2', rotated: 3, failed: 0, conflicts: 0 });
      expect(done.idempotencyRecords).toMatchObject({ underOtherKeys: 1, plaintext: 0 });
      expect(Date.parse(done.idempotencyRecords.lastExpiresAt!)).toBeGreaterThan(Date.now());
      expect(await cached()).toBe(0); // the rewritten patients' entries (old ciphertext) were dropped
      const rows = await tenantRowsText();
      expect(rows).not.toContain('enc:v1:k1:');
      expect(rows.match(/enc:v1:k2:/g)).toHaveLength(5);
      for (const ssn of ssns) expectNoPlaintext(rows.replace(/MRN-[0-9-]+/g, ''), ssn);

      await readAll(both());
      await readAll(onlyNew());
      // Nothing changed for clients: same versions (ETags), and readAll's searches show the blind indexes did not change.
      for (const id of ids) expect((await getPatient(ctxWith(onlyNew()), id)).version).toBe(1);

      const again = await rotateKeys(srv.deps.db, both(), [tenant], { batchSize: 2 });
      expect(again).toMatchObject({ ok: true, scanned: 0, rotated: 0 });
    });

    it('a server whose ring lacks the key of a value answers 500 INTERNAL without details', async () => {
      // srv still has only k1, and the rows are now under k2: the missing-key case of a bad deployment.
      const res = await api('GET', `/v1/patients?identifier=${encodeURIComponent(`${SSN}|${ssns[2]}`)}`);
      expectError(res, 500, 'INTERNAL');
      expect(res.text).not.toContain('enc:v1');
    });

    it('encrypts identifiers of a listed system still stored in plaintext (stored before the system was listed)', async () => {
      const p = await create(newSsn());
      const legacy = newSsn();
      await setStored(p.id, [{ system: SSN, value: legacy }, { system: MRN, value: 'MRN-legacy' }]);
      const r = await rotateKeys(srv.deps.db, both(), [tenant]);
      expect(r.ok).toBe(true);
      expect(r.plaintextIdentifiers).toMatchObject({ sealed: 1, conflicts: 0, complete: true });
      const stored = await storedText(p.id);
      expectNoPlaintext(stored, legacy);
      expect(stored).toContain('enc:v1:k2:');
      expect(stored).toContain('"MRN-legacy"');
      const ctx = ctxWith(onlyNew());
      expect((await getPatient(ctx, p.id)).identifiers).toEqual([{ system: SSN, value: legacy }, { system: MRN, value: 'MRN-legacy' }]);
      expect((await listPatients(ctx, { identifier: `${SSN}|${legacy}` })).data.map((x) => x.id)).toEqual([p.id]);
    });
  });
});

describe('carebase keys rotate (CLI)', () => {
  afterAll(async () => {
    await killAll();
    cleanupDirs();
  });

  it('prints a JSON summary and exits 0 when everything is under the primary key; usage errors and weak keys exit 2', async () => {
    const env = cliEnv({ DATA_DIR: migratedDataDir(), LOG_LEVEL: 'silent', ENCRYPTION_KEYS: `k1:${b64(randomBytes(32))}`, BLIND_INDEX_KEY: b64(randomBytes(32)) });
    const ok = await runCli(['keys', 'rotate', '--batch-size', '50'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, complete: true, primaryKeyId: 'k1', failed: 0 });

    const usage = await runCli(['keys', 'rotate', '--batch-size', '0'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--batch-size');

    const weak = await runCli(['keys', 'rotate'], { ...env, ENCRYPTION_KEYS: `k1:${b64(Buffer.alloc(32))}` });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toContain('ENCRYPTION_KEYS');
  });
});
