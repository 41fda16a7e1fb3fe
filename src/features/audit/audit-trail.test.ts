// What gets audited, and how: every read, write, denial and failure on patient data leaves one
// HMAC-signed record with who, what, when and from where; a write's record commits with the write;
// read records are batched within AUDIT_FLUSH_MS and flushed on shutdown; the application role
// cannot change them.
import { rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, ifMatch, type Client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { createDb } from '../../platform/db/index.js';
import { hmacMatches } from './audit-record.js';
import type { AuditEventRow } from './audit.table.js';
import { rowsOf } from '../../../test/helpers/db.js';

interface Row {
  action: string;
  outcome: string;
  resource_type: string;
  resource_id: string | null;
  patient_id: string | null;
  actor_sub: string;
  actor_roles: string[];
  request_id: string | null;
  client_ip: string | null;
  user_agent: string | null;
  detail: Record<string, unknown> | null;
}

const COLUMNS = 'action, outcome, resource_type, resource_id, patient_id, actor_sub, actor_roles, request_id, client_ip, user_agent, detail';

const auditRows = (srv: TestServer, tenant: string, where = 'true') => rowsOf<Row>(srv, tenant, sql.raw(`select ${COLUMNS} from audit_trail where ${where} order by id`));

describe.each(storageModes())('audit trail on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = client(srv.url, await srv.token({ tenant, roles: ['admin'], sub: 'dr-admin' }));
  });
  afterAll(() => srv?.close());

  it('records create, read, update and delete of a patient with actor, request ID, client and outcome', async () => {
    const headers = { 'x-request-id': 'audit-req-1', 'user-agent': 'audit-test/1.0' };
    const p = (await admin('POST', '/v1/patients', { body: patientInput(), headers })).body;
    // The write's record is committed with the write: there before any flush.
    expect(await auditRows(srv, tenant, `resource_id = '${p.id}'`)).toEqual([
      {
        action: 'create', outcome: 'success', resource_type: 'Patient', resource_id: p.id, patient_id: p.id, actor_sub: 'dr-admin',
        actor_roles: ['admin'], request_id: 'audit-req-1', client_ip: '127.0.0.1', user_agent: 'audit-test/1.0', detail: null,
      },
    ]);
    expect((await admin('GET', `/v1/patients/${p.id}`)).status).toBe(200);
    expect((await admin('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 010 2030' }, headers: ifMatch(1) })).status).toBe(200);
    expect((await admin('DELETE', `/v1/patients/${p.id}`, { headers: ifMatch(2) })).status).toBe(204);
    await srv.deps.audit.flush();
    const rows = await auditRows(srv, tenant, `resource_id = '${p.id}'`);
    expect(rows.map((r) => `${r.action}:${r.outcome}`)).toEqual(['create:success', 'read:success', 'update:success', 'delete:success']);
    expect(rows.every((r) => r.patient_id === p.id && r.actor_sub === 'dr-admin')).toBe(true);
  });

  it('every record carries a valid HMAC under the configured key', async () => {
    await admin('POST', '/v1/patients', { body: patientInput() });
    await srv.deps.audit.flush();
    const rows = await rowsOf(srv, tenant, sql`select * from audit_trail`);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      const row = {
        tenantId: r.tenant_id, id: r.id, occurredAt: new Date(r.occurred_at as string), actorSub: r.actor_sub, actorRoles: r.actor_roles,
        action: r.action, resourceType: r.resource_type, resourceId: r.resource_id, patientId: r.patient_id, outcome: r.outcome,
        requestId: r.request_id, clientIp: r.client_ip, userAgent: r.user_agent, detail: r.detail, keyId: r.key_id, hmac: r.hmac,
      } as AuditEventRow;
      expect(row.keyId).toBe(srv.deps.audit.key.id);
      expect(hmacMatches(srv.deps.audit.key, row)).toBe(true);
      expect(hmacMatches(srv.deps.audit.key, { ...row, actorSub: 'someone-else' })).toBe(false);
    }
  });

  it('records denied accesses: another patient’s record (404 to the caller) and a missing permission (403)', async () => {
    const p = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
    const other = client(srv.url, await srv.token({ tenant, roles: ['patient'], sub: 'pat-x', patientId: randomUUID() }));
    expectError(await other('GET', `/v1/patients/${p.id}`), 404, 'NOT_FOUND');
    const staff = client(srv.url, await srv.token({ tenant, roles: ['staff'], sub: 'front-desk' }));
    const del = await staff('DELETE', `/v1/patients/${p.id}`, { headers: ifMatch(1) });
    expect(del.status).toBe(403);
    await srv.deps.audit.flush();
    const denied = await auditRows(srv, tenant, `resource_id = '${p.id}' and outcome = 'denied'`);
    expect(denied.map((r) => [r.action, r.actor_sub, r.detail])).toEqual([
      ['read', 'pat-x', { code: 'NOT_FOUND', reason: 'out of scope' }],
      ['delete', 'front-desk', { code: 'FORBIDDEN' }],
    ]);
    // A patient's search only ever sees itself; a list is audited per patient returned.
    const own = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
    const me = client(srv.url, await srv.token({ tenant, roles: ['patient'], sub: 'pat-me', patientId: own.id }));
    expect((await me('GET', '/v1/patients')).body.data.map((x: { id: string }) => x.id)).toEqual([own.id]);
    await srv.deps.audit.flush();
    expect((await auditRows(srv, tenant, `actor_sub = 'pat-me'`)).map((r) => [r.action, r.resource_id, r.outcome])).toEqual([['read', own.id, 'success']]);
  });

  it('records failed writes as errors with their code, and a failed change leaves no success record', async () => {
    const p = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
    expectError(await admin('PATCH', `/v1/patients/${p.id}`, { body: { birthDate: '2999-01-01' }, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
    expectError(await admin('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 0000' }, headers: ifMatch(7) }), 412, 'VERSION_CONFLICT');
    await srv.deps.audit.flush();
    const rows = await auditRows(srv, tenant, `resource_id = '${p.id}' and action = 'update'`);
    expect(rows.map((r) => [r.outcome, r.detail])).toEqual([
      ['error', { code: 'VALIDATION_FAILED' }],
      ['error', { code: 'VERSION_CONFLICT' }],
    ]);
  });

  it('the application role cannot change or remove audit records', async () => {
    await admin('POST', '/v1/patients', { body: patientInput() });
    const before = await auditRows(srv, tenant);
    for (const stmt of [
      sql`update audit_events set actor_sub = 'nobody'`,
      sql`delete from audit_events`,
      sql`truncate audit_events`,
    ]) {
      await expect(srv.deps.db.tx(tenant, (q) => q.execute(stmt))).rejects.toThrow();
    }
    expect(await auditRows(srv, tenant)).toEqual(before);
  });
});

describe.each(storageModes())('audit batching on %s', (mode) => {
  it('writes read records within AUDIT_FLUSH_MS, and flushes what is pending on shutdown', async () => {
    const srv = await startServer(mode, { AUDIT_FLUSH_MS: '200' });
    const tenant = await srv.newTenant();
    const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'batcher' }));
    const p = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    expect((await api('GET', `/v1/patients/${p.id}`)).status).toBe(200);
    const reads = () => auditRows(srv, tenant, `action = 'read' and resource_id = '${p.id}'`);
    const started = Date.now();
    while ((await reads()).length === 0) {
      expect(Date.now() - started).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Pending at shutdown: a read just before closing is still written.
    expect((await api('GET', `/v1/patients/${p.id}`)).status).toBe(200);
    expect(srv.deps.audit.stats().pending).toBe(1);
    await srv.app.close();
    await srv.deps.close();
    const db = await createDb(srv.deps.config.database);
    try {
      const { rows } = (await db.read(tenant, (q) => q.execute(sql`select count(*)::int as n from audit_trail where action = 'read' and resource_id = ${p.id}`))) as unknown as { rows: { n: number }[] };
      expect(rows[0]!.n).toBe(2);
    } finally {
      await db.close();
      rmSync(srv.dataDir, { recursive: true, force: true });
    }
  });

  it('AUDIT_READS=sync writes each read record before the response', async () => {
    const srv = await startServer(mode, { AUDIT_READS: 'sync' });
    try {
      const tenant = await srv.newTenant();
      const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'sync-reader' }));
      const p = (await api('POST', '/v1/patients', { body: patientInput() })).body;
      expect((await api('GET', `/v1/patients/${p.id}`)).status).toBe(200);
      expect(srv.deps.audit.stats().pending).toBe(0);
      expect(await auditRows(srv, tenant, `action = 'read' and resource_id = '${p.id}'`)).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });
});
