// The audit APIs: search (filters, pagination, roles), a patient's access log (scope), bad
// queries, and the signed NDJSON export, ours and FHIR AuditEvent, streamed page by page.
import { randomUUID } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, ifMatch, type Client, type Res } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import type { Role } from '../../auth/principal.js';
import { hmacMatches } from './audit-record.js';
import { auditTrail, type AuditEventRow } from './audit.table.js';
import type { AuditEvent } from './audit-events.schema.js';
import { verifyExport } from './export-signature.js';

type Row = AuditEventRow;

const rowOf = (e: AuditEvent, tenantId: string): Row => ({
  tenantId,
  id: e.id,
  occurredAt: new Date(e.occurredAt),
  actorSub: e.actor.sub,
  actorRoles: e.actor.roles,
  action: e.action,
  resourceType: e.resource.type,
  resourceId: e.resource.id,
  patientId: e.patientId,
  outcome: e.outcome,
  requestId: e.requestId,
  clientIp: e.client.ip,
  userAgent: e.client.userAgent,
  detail: e.detail as Row['detail'],
  keyId: e.keyId,
  hmac: e.hmac,
});

/** FHIR JSON has no empty strings, arrays or objects, and no nulls. */
function emptyElements(v: unknown, path = ''): string[] {
  if (v === null || v === '') return [path];
  if (Array.isArray(v)) return v.length === 0 ? [path] : v.flatMap((x, i) => emptyElements(x, `${path}/${i}`));
  if (typeof v === 'object') {
    const entries = Object.entries(v as object);
    return entries.length === 0 ? [path] : entries.flatMap(([k, x]) => emptyElements(x, `${path}/${k}`));
  }
  return [];
}

describe.each(storageModes())('audit APIs on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  let manager: Client;
  let clinician: Client;
  let staff: Client;
  let self: Client; // patient A's own token
  let a: { id: string };
  let b: { id: string };
  let c: { id: string };

  const as = async (roles: Role[], sub: string, patientId?: string, t = tenant) =>
    client(srv.url, await srv.token({ tenant: t, roles, sub, ...(patientId ? { patientId } : {}) }));

  /** Every audit row of the tenant, from the database, in id order (after writing pending reads). */
  async function dbRows(t = tenant): Promise<Row[]> {
    await srv.deps.audit.flush();
    return srv.deps.db.read(t, (q) => q.select().from(auditTrail).where(eq(auditTrail.tenantId, t)).orderBy(asc(auditTrail.id)));
  }

  /** Every page of a list, following nextCursor. */
  async function listAll(api: Client, path: string, limit = 100): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    let cursor: string | null = null;
    const sep = path.includes('?') ? '&' : '?';
    do {
      const res: Res = await api('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status, res.text).toBe(200);
      out.push(...res.body.data);
      cursor = res.body.page.nextCursor;
    } while (cursor);
    return out;
  }

  /** Records of the list that were in the snapshot (later ones are the audits of these very calls). */
  const within = (list: AuditEvent[], snapshot: Row[]) => {
    const max = snapshot.at(-1)!.id;
    return list.filter((e) => e.id <= max).map((e) => e.id);
  };

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = await as(['admin'], 'admin-1');
    manager = await as(['manager'], 'manager-1');
    clinician = await as(['clinician'], 'clin-1');
    staff = await as(['staff'], 'staff-1');
    const create = async () => {
      const res = await admin('POST', '/v1/patients', { body: patientInput() });
      expect(res.status).toBe(201);
      return res.body as { id: string };
    };
    a = await create();
    b = await create();
    c = await create();
    self = await as(['patient'], 'pat-a', a.id);
    expect((await clinician('GET', `/v1/patients/${a.id}`)).status).toBe(200);
    expect((await staff('GET', `/v1/patients/${b.id}`)).status).toBe(200);
    expect((await clinician('PATCH', `/v1/patients/${a.id}`, { body: { gender: 'other' }, headers: ifMatch(1) })).status).toBe(200);
    expect((await self('GET', `/v1/patients/${a.id}`)).status).toBe(200);
    expectError(await self('GET', `/v1/patients/${b.id}`), 404, 'NOT_FOUND'); // denied, audited against b
    expect((await manager('GET', `/v1/patients/${c.id}`)).status).toBe(200);
    await srv.deps.audit.flush();
  });
  afterAll(() => srv?.close());

  describe('GET /v1/audit-events', () => {
    it('lists the records with every field, in id order, each with a valid HMAC', async () => {
      const snapshot = await dbRows();
      const list = await listAll(admin, '/v1/audit-events?resourceType=Patient');
      expect(list.map((e) => e.id)).toEqual(snapshot.filter((r) => r.resourceType === 'Patient').map((r) => r.id));
      expect(list.length).toBeGreaterThanOrEqual(9);
      for (const e of list) expect(hmacMatches(srv.deps.audit.key, rowOf(e, tenant)), e.id).toBe(true);
      const patched = list.find((e) => e.action === 'update')!;
      expect(patched).toEqual({
        id: expect.any(String),
        occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        actor: { sub: 'clin-1', roles: ['clinician'] },
        action: 'update',
        resource: { type: 'Patient', id: a.id },
        patientId: a.id,
        outcome: 'success',
        requestId: expect.any(String),
        client: { ip: '127.0.0.1', userAgent: expect.any(String) },
        detail: null,
        keyId: srv.deps.audit.key.id,
        hmac: expect.any(String),
      });
    });

    it('filters by patient, actor, action, resource, outcome and time range', async () => {
      const snapshot = await dbRows();
      const expectFilter = async (query: string, pred: (r: Row) => boolean, atLeast = 1) => {
        const list = await listAll(admin, `/v1/audit-events?${query}`);
        const expected = snapshot.filter(pred).map((r) => r.id);
        expect(within(list, snapshot), query).toEqual(expected);
        expect(expected.length, query).toBeGreaterThanOrEqual(atLeast);
      };
      await expectFilter(`patientId=${a.id}`, (r) => r.patientId === a.id, 4);
      await expectFilter('actor=clin-1', (r) => r.actorSub === 'clin-1', 2);
      await expectFilter('action=update', (r) => r.action === 'update');
      await expectFilter('action=create&resourceType=Patient', (r) => r.action === 'create' && r.resourceType === 'Patient', 3);
      await expectFilter(`resourceType=Patient&resourceId=${b.id}`, (r) => r.resourceType === 'Patient' && r.resourceId === b.id, 3);
      await expectFilter('outcome=denied', (r) => r.outcome === 'denied');
      const denied = snapshot.find((r) => r.outcome === 'denied')!;
      expect(denied).toMatchObject({ actorSub: 'pat-a', action: 'read', patientId: b.id, resourceId: b.id });

      const patientRows = snapshot.filter((r) => r.resourceType === 'Patient');
      const mid = patientRows[Math.floor(patientRows.length / 2)]!.occurredAt;
      const last = patientRows.at(-1)!.occurredAt;
      const q = (d: Date) => encodeURIComponent(d.toISOString());
      await expectFilter(`resourceType=Patient&from=${q(mid)}`, (r) => r.resourceType === 'Patient' && r.occurredAt >= mid);
      await expectFilter(`resourceType=Patient&to=${q(mid)}`, (r) => r.resourceType === 'Patient' && r.occurredAt < mid);
      await expectFilter(`resourceType=Patient&from=${q(mid)}&to=${q(last)}`, (r) => r.resourceType === 'Patient' && r.occurredAt >= mid && r.occurredAt < last, 0);
      // Offsets other than Z are instants too.
      const plus2 = new Date(mid.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00');
      await expectFilter(`resourceType=Patient&from=${encodeURIComponent(plus2)}`, (r) => r.resourceType === 'Patient' && r.occurredAt >= mid);
    });

    it('pages with limit and cursor: no duplicates, no gaps', async () => {
      const snapshot = await dbRows();
      const expected = snapshot.filter((r) => r.resourceType === 'Patient').map((r) => r.id);
      for (const limit of [1, 2, 4]) {
        const ids = (await listAll(manager, '/v1/audit-events?resourceType=Patient', limit)).map((e) => e.id);
        expect(ids, `limit ${limit}`).toEqual(expected);
      }
      const first = await admin('GET', '/v1/audit-events?resourceType=Patient&limit=2');
      expect(first.body.page).toEqual({ limit: 2, nextCursor: expect.any(String) });
      expect(first.body.data).toHaveLength(2);
      expect(first.headers.get('cache-control')).toBe('no-store');
    });

    it('is audited itself: a search is a read of AuditEvent with its count', async () => {
      const res = await admin('GET', `/v1/audit-events?patientId=${c.id}&limit=100`);
      expect(res.status).toBe(200);
      const [mine] = (await dbRows()).filter((r) => r.requestId === res.headers.get('x-request-id'));
      expect(mine).toMatchObject({ action: 'read', resourceType: 'AuditEvent', patientId: c.id, outcome: 'success', actorSub: 'admin-1', detail: { search: true, count: res.body.data.length } });
      expect(hmacMatches(srv.deps.audit.key, mine!)).toBe(true);
    });

    it.each(['clinician', 'staff', 'patient'] as const)('%s: 403 FORBIDDEN on search and export, and the attempt is audited as denied', async (role) => {
      const api = await as([role], `${role}-x`, role === 'patient' ? a.id : undefined);
      expectError(await api('GET', '/v1/audit-events'), 403, 'FORBIDDEN');
      expectError(await api('GET', `/v1/audit-events?patientId=${a.id}`), 403, 'FORBIDDEN');
      expectError(await api('GET', '/v1/audit-events/export'), 403, 'FORBIDDEN');
      const denied = (await dbRows()).filter((r) => r.actorSub === `${role}-x`);
      expect(denied.map((r) => [r.action, r.resourceType, r.outcome])).toEqual([
        ['read', 'AuditEvent', 'denied'],
        ['read', 'AuditEvent', 'denied'],
        ['export', 'AuditEvent', 'denied'],
      ]);
    });

    it('401 without a token', async () => {
      expectError(await client(srv.url)('GET', '/v1/audit-events'), 401, 'UNAUTHENTICATED');
    });

    it('sees only its own tenant', async () => {
      const other = await srv.newTenant();
      const otherAdmin = await as(['admin'], 'admin-2', undefined, other);
      expect((await otherAdmin('GET', `/v1/audit-events?patientId=${a.id}`)).body.data).toEqual([]);
      expectError(await otherAdmin('GET', `/v1/patients/${a.id}/access-log`), 404, 'NOT_FOUND');
      expectError(await otherAdmin('GET', `/v1/patients/${a.id}/access-log`), 404, 'NOT_FOUND');
      // All the other tenant has about that id are its own attempts (their filters named it).
      const seen = await listAll(otherAdmin, `/v1/audit-events?patientId=${a.id}`);
      expect(seen.map((e) => [e.actor.sub, e.resource.type, e.outcome])).toEqual([
        ['admin-2', 'AuditEvent', 'success'],
        ['admin-2', 'AuditEvent', 'error'],
        ['admin-2', 'AuditEvent', 'error'],
      ]);
    });
  });

  describe('bad queries: 400 with details, nothing read or recorded', () => {
    const cases: [string, string][] = [
      ['/v1/audit-events?from=yesterday', '/query/from'],
      ['/v1/audit-events?to=2026-01-01', '/query/to'],
      ['/v1/audit-events?action=peek', '/query/action'],
      ['/v1/audit-events?outcome=maybe', '/query/outcome'],
      ['/v1/audit-events?patientId=not-a-uuid', '/query/patientId'],
      ['/v1/audit-events?resourceType=Pa%20tient', '/query/resourceType'],
      ['/v1/audit-events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', '/query/to'],
      ['/v1/audit-events?sort=desc', '/query/sort'],
      ['/v1/audit-events?limit=0', '/query/limit'],
      ['/v1/audit-events?limit=101', '/query/limit'],
      ['/v1/audit-events?cursor=bogus', '/query/cursor'],
      ['/v1/audit-events/export?format=csv', '/query/format'],
      ['/v1/audit-events/export?limit=5', '/query/limit'],
      ['/v1/audit-events/export?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', '/query/to'],
      ['/v1/patients/PATIENT/access-log?actor=x', '/query/actor'],
      ['/v1/patients/PATIENT/access-log?from=2026-02-01T00:00:00Z&to=2026-01-31T23:59:59Z', '/query/to'],
      ['/v1/patients/not-a-uuid/access-log', '/params/id'],
    ];
    it.each(cases)('%s → %s', async (path, pointer) => {
      const before = (await dbRows()).length;
      const err = expectError(await admin('GET', path.replace('PATIENT', a.id)), 400, 'VALIDATION_FAILED');
      expect(err.details?.map((d) => d.path)).toContain(pointer);
      expect((await dbRows()).length).toBe(before);
    });
  });

  describe('GET /v1/patients/{id}/access-log', () => {
    it("returns exactly that patient's records, to every staff role", async () => {
      for (const api of [admin, manager, clinician, staff]) {
        const snapshot = await dbRows();
        const log = await listAll(api, `/v1/patients/${a.id}/access-log`);
        expect(within(log, snapshot)).toEqual(snapshot.filter((r) => r.patientId === a.id).map((r) => r.id));
        expect(log.every((e) => e.patientId === a.id)).toBe(true);
        expect(log.map((e) => e.action)).toEqual(expect.arrayContaining(['create', 'read', 'update']));
      }
    });

    it('is audited: reading the log is a read of AuditEvent for that patient, and shows in the log', async () => {
      const res = await staff('GET', `/v1/patients/${c.id}/access-log`);
      expect(res.status).toBe(200);
      const log = await listAll(admin, `/v1/patients/${c.id}/access-log`);
      expect(log.find((e) => e.requestId === res.headers.get('x-request-id'))).toMatchObject({
        action: 'read', resource: { type: 'AuditEvent', id: null }, patientId: c.id, outcome: 'success', actor: { sub: 'staff-1' },
        detail: { accessLog: true, count: res.body.data.length },
      });
    });

    it('a patient sees its own log (without staff network addresses); another patient is 404 and audited as denied', async () => {
      const snapshot = await dbRows();
      const own = await listAll(self, `/v1/patients/${a.id}/access-log`);
      expect(within(own, snapshot)).toEqual(snapshot.filter((r) => r.patientId === a.id).map((r) => r.id));
      expect(own.every((e) => e.client.ip === null && e.client.userAgent === null)).toBe(true);
      const res = await self('GET', `/v1/patients/${b.id}/access-log`);
      expectError(res, 404, 'NOT_FOUND');
      const [denied] = (await dbRows()).filter((r) => r.requestId === res.headers.get('x-request-id'));
      expect(denied).toMatchObject({ action: 'read', resourceType: 'AuditEvent', patientId: b.id, outcome: 'denied', actorSub: 'pat-a' });
    });

    it('pages and filters by time; an unknown patient is 404', async () => {
      const snapshot = (await dbRows()).filter((r) => r.patientId === a.id);
      const paged = await listAll(admin, `/v1/patients/${a.id}/access-log`, 2);
      expect(new Set(paged.map((e) => e.id)).size).toBe(paged.length);
      expect(within(paged, snapshot)).toEqual(snapshot.map((r) => r.id));
      const mid = snapshot[Math.floor(snapshot.length / 2)]!.occurredAt;
      const from = await listAll(admin, `/v1/patients/${a.id}/access-log?from=${encodeURIComponent(mid.toISOString())}`);
      expect(within(from, snapshot)).toEqual(snapshot.filter((r) => r.occurredAt >= mid).map((r) => r.id));
      const to = await listAll(admin, `/v1/patients/${a.id}/access-log?to=${encodeURIComponent(mid.toISOString())}`);
      expect(to.map((e) => e.id)).toEqual(snapshot.filter((r) => r.occurredAt < mid).map((r) => r.id));
      expectError(await admin('GET', `/v1/patients/${randomUUID()}/access-log`), 404, 'NOT_FOUND');
    });

    it('a deleted patient keeps its log', async () => {
      const p = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
      expect((await admin('DELETE', `/v1/patients/${p.id}`, { headers: ifMatch(1) })).status).toBe(204);
      const log = await listAll(admin, `/v1/patients/${p.id}/access-log`);
      expect(log.map((e) => e.action).slice(0, 2)).toEqual(['create', 'delete']);
    });
  });

  describe('GET /v1/audit-events/export', () => {
    it('streams signed NDJSON: every record of the list, a trailer that verifies, and fails when a line is removed', async () => {
      const list = await listAll(admin, '/v1/audit-events?resourceType=Patient');
      const res = await manager('GET', '/v1/audit-events/export?resourceType=Patient');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const lines = res.text.split('\n');
      expect(lines.pop()).toBe('');
      const docs = lines.map((l) => JSON.parse(l));
      const trailer = docs.pop().trailer;
      expect(trailer).toMatchObject({ scheme: 'carebase-audit-export/1', alg: 'HMAC-SHA256', tenantId: tenant, format: 'carebase', keyId: srv.deps.audit.key.id, count: list.length });
      expect(docs).toEqual(list);
      for (const e of docs) expect(hmacMatches(srv.deps.audit.key, rowOf(e, trailer.tenantId))).toBe(true);

      const key = srv.deps.audit.key;
      expect(verifyExport(key, res.text)).toMatchObject({ ok: true, lines: lines.slice(0, -1) });
      const without = (i: number) => [...lines.slice(0, i), ...lines.slice(i + 1)].join('\n') + '\n';
      expect(verifyExport(key, without(1)).ok).toBe(false); // a record removed
      expect(verifyExport(key, without(lines.length - 1)).ok).toBe(false); // the trailer removed (cut off)
      expect(verifyExport(key, res.text.slice(0, -5)).ok).toBe(false); // cut mid-line
      const changed = res.text.replace('"outcome":"denied"', '"outcome":"success"');
      expect(changed).not.toBe(res.text);
      expect(verifyExport(key, changed).ok).toBe(false); // a record changed
      const swapped = [lines[1], lines[0], ...lines.slice(2)].join('\n') + '\n';
      expect(verifyExport(key, swapped).ok).toBe(false); // reordered
      expect(verifyExport({ id: key.id, secret: Buffer.alloc(32, 7) }, res.text).ok).toBe(false); // another key
    });

    it('applies the filters, and is audited as one export with its count', async () => {
      const res = await admin('GET', `/v1/audit-events/export?patientId=${a.id}&action=read`);
      expect(res.status).toBe(200);
      const check = verifyExport(srv.deps.audit.key, res.text);
      expect(check.ok).toBe(true);
      const records = check.ok ? check.lines.map((l) => JSON.parse(l) as AuditEvent) : [];
      expect(records.length).toBeGreaterThanOrEqual(2);
      expect(records.every((e) => e.patientId === a.id && e.action === 'read')).toBe(true);
      const [audit] = (await dbRows()).filter((r) => r.requestId === res.headers.get('x-request-id'));
      expect(audit).toMatchObject({ action: 'export', resourceType: 'AuditEvent', patientId: a.id, outcome: 'success', actorSub: 'admin-1', detail: { count: records.length, format: 'carebase' } });
      expect(hmacMatches(srv.deps.audit.key, audit!)).toBe(true);
    });

    it('an empty export is a signed trailer alone', async () => {
      const res = await admin('GET', `/v1/audit-events/export?patientId=${randomUUID()}`);
      expect(res.status).toBe(200);
      expect(verifyExport(srv.deps.audit.key, res.text)).toMatchObject({ ok: true, lines: [] });
    });

    it('?format=fhir streams valid FHIR R4 AuditEvents and a signed Parameters trailer', async () => {
      const list = await listAll(admin, '/v1/audit-events?resourceType=Patient');
      const res = await admin('GET', '/v1/audit-events/export?resourceType=Patient&format=fhir');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      const check = verifyExport(srv.deps.audit.key, res.text);
      expect(check.ok).toBe(true);
      if (!check.ok) return;
      expect(check.trailer.format).toBe('fhir');
      expect(JSON.parse(res.text.trim().split('\n').pop()!).resourceType).toBe('Parameters');
      const events = check.lines.map((l) => JSON.parse(l));
      expect(events.map((e) => e.id)).toEqual(list.map((e) => e.id));
      for (const [i, ev] of events.entries()) {
        const rec = list[i]!;
        expect(emptyElements(ev), ev.id).toEqual([]);
        expect(ev.resourceType).toBe('AuditEvent');
        expect(ev.type).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' });
        expect(ev.recorded).toBe(rec.occurredAt);
        expect(ev.action).toBe({ create: 'C', read: 'R', update: 'U', delete: 'D' }[rec.action as 'read']);
        expect(ev.outcome).toBe(rec.outcome === 'success' ? '0' : '4');
        expect(ev.agent).toHaveLength(1);
        expect(ev.agent[0]).toMatchObject({ who: { identifier: { value: rec.actor.sub } }, requestor: true, network: { address: '127.0.0.1', type: '2' } });
        expect(ev.source).toMatchObject({ observer: { display: 'Carebase' }, site: tenant });
        expect(ev.entity[0].what).toEqual({ reference: `Patient/${rec.resource.id}` });
        expect(ev.subtype).toContainEqual({ system: 'http://hl7.org/fhir/restful-interaction', code: rec.action === 'read' ? 'read' : rec.action });
        expect(ev.entity).toContainEqual(expect.objectContaining({ what: { identifier: { value: rec.requestId } } }));
        expect(ev.extension[0].extension).toEqual([{ url: 'keyId', valueString: rec.keyId }, { url: 'hmac', valueString: rec.hmac }]);
      }
      expect(events.find((e) => e.outcome === '4')?.outcomeDesc).toBe('NOT_FOUND');
    });

    it('maps exports, searches and failures to FHIR too (type Export, search-type, outcome 4/8)', async () => {
      const res = await admin('GET', '/v1/audit-events/export?resourceType=AuditEvent&format=fhir');
      const check = verifyExport(srv.deps.audit.key, res.text);
      expect(check.ok).toBe(true);
      if (!check.ok) return;
      const events = check.lines.map((l) => JSON.parse(l));
      for (const ev of events) expect(emptyElements(ev), ev.id).toEqual([]);
      const exp = events.find((e) => e.subtype.some((s: { code: string }) => s.code === 'export') && e.outcome === '0');
      expect(exp).toMatchObject({ type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110106' }, action: 'R' });
      const search = events.find((e) => e.entity[0].what.type === 'AuditEvent' && e.outcome === '0');
      expect(search.subtype).toContainEqual({ system: 'http://hl7.org/fhir/restful-interaction', code: 'search-type' });
      expect(events.find((e) => e.outcome === '4')?.outcomeDesc).toEqual(expect.stringMatching(/FORBIDDEN|NOT_FOUND/));
    });

    it('reads large exports page by page, in id order, and closes the connection (no trailer) when the database fails mid-stream', async () => {
      const bulk = await srv.newTenant();
      const who = { tenantId: bulk, principal: { sub: 'bulk', roles: new Set(['staff']) }, requestId: 'bulk-1' };
      const t0 = Date.now();
      for (let i = 0; i < 1234; i++) {
        await srv.deps.audit.record(who, { action: 'read', resourceType: 'Patient', resourceId: randomUUID(), patientId: randomUUID() }, new Date(t0 + i));
      }
      await srv.deps.audit.flush();
      const bulkAdmin = await as(['admin'], 'bulk-admin', undefined, bulk);
      const res = await bulkAdmin('GET', '/v1/audit-events/export?resourceType=Patient');
      const check = verifyExport(srv.deps.audit.key, res.text);
      expect(check.ok).toBe(true);
      if (!check.ok) return;
      const ids = check.lines.map((l) => (JSON.parse(l) as AuditEvent).id);
      expect(ids).toHaveLength(1234);
      expect([...ids].sort()).toEqual(ids);
      expect(new Set(ids).size).toBe(1234);

      // The second page's query fails: the client gets the first page and no trailer.
      const db = srv.deps.db as unknown as { read: (t: string, fn: (q: never) => Promise<unknown>) => Promise<unknown> };
      const read = db.read;
      let calls = 0;
      db.read = (t, fn) => (t === bulk && ++calls === 3 ? Promise.reject(new Error('boom')) : read.call(srv.deps.db, t, fn));
      try {
        const broken = await fetch(`${srv.url}/v1/audit-events/export?resourceType=Patient`, { headers: { authorization: `Bearer ${await srv.token({ tenant: bulk, roles: ['admin'], sub: 'bulk-admin' })}` } });
        expect(broken.status).toBe(200);
        const text = await broken.text().catch(() => 'terminated');
        expect(verifyExport(srv.deps.audit.key, text).ok).toBe(false);
      } finally {
        db.read = read;
      }
      expect(srv.logs.some((l) => l.includes('audit export failed mid-stream'))).toBe(true);
      const errors = (await dbRows(bulk)).filter((r) => r.action === 'export' && r.outcome === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]!.detail).toMatchObject({ code: 'INTERNAL', count: 500 });
    });
  });
});
