// The transactional outbox and the event log: every committed change has exactly one event, in
// the same statement as the change; failed changes have none; the dispatcher numbers each tenant's
// events 1, 2, 3, … in write order, once, even with several dispatchers; the log serves resumes
// and says when it cannot (resync); events reach every instance's bus.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../../test/helpers/db.js';
import { locationInput, patientInput, providerInput } from '../../../test/helpers/factories.js';
import { client, type Client } from '../../../test/helpers/http.js';
import { waitFor } from '../../../test/helpers/process.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { pgError } from '../../platform/db/errors.js';
import { installTracing } from '../../platform/tracing/tracing.js';
import { clientEvent } from '../../http/realtime/connection.js';
import { dispatchOnce, purgeEvents } from './dispatcher.js';
import type { ScopedEvent } from './events.js';

/** Every event of the tenant in the log, in id order (waits until `n` are there). */
async function eventsOf(srv: TestServer, tenant: string, n: number): Promise<ScopedEvent[]> {
  let events: ScopedEvent[] = [];
  await waitFor(async () => {
    events = (await srv.deps.events.log.after(tenant, 0n, 1000)).events;
    return events.length >= n;
  }, 10_000, () => `expected ${n} events, have ${events.length}`);
  return events;
}

const ifMatch = (v: number) => ({ 'if-match': `W/"${v}"` });

describe.each(storageModes())('outbox and event log on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode, { EVENTS_DISPATCH_INTERVAL_MS: '20' });
  });
  afterAll(() => srv?.close());

  async function apiFor(tenant: string, role: 'admin' | 'clinician' = 'admin'): Promise<Client> {
    return client(srv.url, await srv.token({ tenant, roles: [role], sub: `${role}-events` }));
  }

  it('writes one event per committed change of every resource, numbered 1..n per tenant in write order, with its scope and request ID', async () => {
    const tenant = await srv.newTenant();
    const api = await apiFor(tenant);
    const rid = (s: string) => ({ 'x-request-id': `evt-${s}` });
    const loc = await api('POST', '/v1/locations', { body: locationInput(), headers: rid('loc') });
    const prov = await api('POST', '/v1/providers', { body: providerInput({ locationIds: [loc.body.id] }), headers: rid('prov') });
    const p = await api('POST', '/v1/patients', { body: patientInput(), headers: rid('p1') });
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 0001' }, headers: { ...ifMatch(1), ...rid('p2') } })).status).toBe(200);
    const q = await api('POST', '/v1/questionnaires', { body: simpleQuestionnaire() });
    expect((await api('PATCH', `/v1/questionnaires/${q.body.id}`, { body: { status: 'active' }, headers: ifMatch(1) })).status).toBe(200);
    const r = await api('POST', '/v1/questionnaire-responses', { body: { questionnaireId: q.body.id, patientId: p.body.id }, headers: rid('r1') });
    expect(r.status, r.text).toBe(201);
    expect((await api('PATCH', `/v1/questionnaire-responses/${r.body.id}`, { body: { item: [{ linkId: 'smoker', answer: [{ valueBoolean: false }] }] }, headers: ifMatch(1) })).status).toBe(200);
    expect((await api('POST', `/v1/questionnaire-responses/${r.body.id}/submit`, { headers: ifMatch(2) })).status).toBe(200);
    expect((await api('POST', `/v1/patients/${p.body.id}/consents`, { body: { purpose: 'research', decision: 'granted' } })).status).toBe(201);
    expect((await api('DELETE', `/v1/providers/${prov.body.id}`, { headers: ifMatch(1) })).status).toBe(204);

    const events = await eventsOf(srv, tenant, 11);
    expect(events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
    expect(events.map((e) => [e.type, e.resource.type, e.resource.version])).toEqual([
      ['location.created', 'locations', 1],
      ['provider.created', 'providers', 1],
      ['patient.created', 'patients', 1],
      ['patient.updated', 'patients', 2],
      ['questionnaire.created', 'questionnaires', 1],
      ['questionnaire.updated', 'questionnaires', 2],
      ['questionnaire-response.created', 'questionnaire-responses', 1],
      ['questionnaire-response.updated', 'questionnaire-responses', 2],
      ['questionnaire-response.updated', 'questionnaire-responses', 3],
      ['consent.created', 'consents', 1],
      ['provider.deleted', 'providers', 2],
    ]);
    expect(events[0]).toMatchObject({ tenantId: tenant, resource: { id: loc.body.id }, requestId: 'evt-loc', patientId: null, questionnaireId: null });
    expect(events[3]).toMatchObject({ resource: { id: p.body.id }, requestId: 'evt-p2', patientId: p.body.id });
    expect(events[6]).toMatchObject({ resource: { id: r.body.id }, requestId: 'evt-r1', patientId: p.body.id, questionnaireId: q.body.id });
    for (const e of events) expect(Date.parse(e.occurredAt)).not.toBeNaN();
    // The carrier column is empty at rest everywhere, and the outbox is drained.
    for (const table of ['patients', 'providers', 'locations', 'questionnaires', 'questionnaire_responses', 'consents']) {
      expect(await rowsOf(srv, tenant, sql`select 1 from ${sql.identifier(table)} where write_meta is not null`)).toEqual([]);
    }
    expect(await srv.deps.events.log.head(tenant)).toBe(11n);
  });

  it('a change that fails writes no event (412, 404, 400, a rolled-back idempotent write)', async () => {
    const tenant = await srv.newTenant();
    const api = await apiFor(tenant);
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    await eventsOf(srv, tenant, 1);
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 0002' }, headers: ifMatch(7) })).status).toBe(412);
    expect((await api('PATCH', `/v1/patients/${randomUUID()}`, { body: { phone: '+1 555 010 0002' }, headers: ifMatch(1) })).status).toBe(404);
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { gender: 'nope' }, headers: ifMatch(1) })).status).toBe(400);
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { gender: 'nope' }, headers: { ...ifMatch(1), 'idempotency-key': randomUUID() } })).status).toBe(400);
    // A later successful change is event 2: nothing was numbered in between.
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 0003' }, headers: ifMatch(1) })).status).toBe(200);
    const events = await eventsOf(srv, tenant, 2);
    expect(events.map((e) => [e.id, e.type])).toEqual([['1', 'patient.created'], ['2', 'patient.updated']]);
  });

  it('concurrent writes from many requests: ids are contiguous and each resource\'s events follow its versions', async () => {
    const tenant = await srv.newTenant();
    const api = await apiFor(tenant);
    const made = await Promise.all(Array.from({ length: 10 }, () => api('POST', '/v1/patients', { body: patientInput() })));
    await Promise.all(
      made.map(async (p) => {
        for (let v = 1; v <= 3; v++) expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: `+1 555 010 000${v}` }, headers: ifMatch(v) })).status).toBe(200);
      }),
    );
    const events = await eventsOf(srv, tenant, 40);
    expect(events.map((e) => e.id)).toEqual(Array.from({ length: 40 }, (_, i) => String(i + 1)));
    for (const p of made) {
      expect(events.filter((e) => e.resource.id === p.body.id).map((e) => e.resource.version)).toEqual([1, 2, 3, 4]);
    }
  });

  it('keeps the traceparent of a traced change with its event, for subscribers on every instance, never for clients', async () => {
    const tenant = await srv.newTenant();
    const api = await apiFor(tenant);
    const traced = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    let current: string | undefined = traced;
    // Tracing as tracer.ts installs it, reduced to what the write path asks: the request's
    // span (none when not sampled), whose traceparent the write keeps.
    installTracing({
      serverSpan: () => (current ? { trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceparent: current }, end: () => {} } : undefined),
      span: (_p, _n, _k, _a, fn) => fn(undefined),
      consumerSpan: (_c, _n, _a, fn) => fn(undefined),
      shutdown: async () => {},
    });
    const heard: ScopedEvent[] = [];
    const off = srv.deps.events.bus.subscribe((e) => e.tenantId === tenant && heard.push(e));
    try {
      const p = await api('POST', '/v1/patients', { body: patientInput() });
      current = undefined; // not traced (tracing off, or not sampled)
      await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 0004' }, headers: ifMatch(1) });
      current = 'not-a-traceparent'; // only a well-formed one is kept (migration 0011)
      await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 0005' }, headers: ifMatch(2) });
      const events = await eventsOf(srv, tenant, 3);
      expect(events.map((e) => e.traceparent)).toEqual([traced, undefined, undefined]);
      await waitFor(() => heard.length >= 3, 5000, () => `bus delivered ${heard.length}`);
      expect(heard[0]!.traceparent).toBe(traced);
      expect(clientEvent(heard[0]!)).not.toHaveProperty('traceparent');
    } finally {
      off();
      installTracing(undefined);
    }
  });

  it('several dispatchers at once dispatch every event exactly once', async () => {
    const tenant = await srv.newTenant();
    const api = await apiFor(tenant);
    // Concurrent dispatch calls (this server's loop runs as well): the union is each event once.
    const seen: ScopedEvent[] = [];
    const off = srv.deps.events.bus.subscribe((e) => {
      if (e.tenantId === tenant) seen.push(e);
    });
    try {
      const writes = Promise.all(Array.from({ length: 20 }, () => api('POST', '/v1/patients', { body: patientInput() })));
      const manual: ScopedEvent[] = [];
      for (let i = 0; i < 20; i++) {
        const got = await Promise.all([dispatchOnce(srv.deps.db, 5), dispatchOnce(srv.deps.db, 5)]);
        manual.push(...got.flat().filter((e) => e.tenantId === tenant));
      }
      await writes;
      const events = await eventsOf(srv, tenant, 20);
      expect(events.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1)));
      // What the manual calls took is not taken again by the loop (ids unique across both).
      const ids = manual.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      // The loop publishes what it dispatched; the bus saw no event twice.
      await waitFor(() => seen.length + manual.length >= 20, 5000, () => `bus saw ${seen.length}`);
      expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    } finally {
      off();
    }
  });

  it('the log pages a resume, and answers resync when the events were removed by retention or the id is unknown', async () => {
    const tenant = await srv.newTenant();
    const api = await apiFor(tenant);
    for (let i = 0; i < 5; i++) await api('POST', '/v1/patients', { body: patientInput() });
    await eventsOf(srv, tenant, 5);
    const log = srv.deps.events.log;
    expect((await log.after(tenant, 1n, 2)).events.map((e) => e.id)).toEqual(['2', '3']);
    expect(await log.after(tenant, 5n, 10)).toEqual({ events: [], resync: false });
    expect(await log.after(tenant, 6n, 10)).toEqual({ events: [], resync: true });
    // Another tenant's log is separate: its ids start at 1 and this tenant's are not visible there.
    const other = await srv.newTenant();
    expect(await log.after(other, 0n, 10)).toEqual({ events: [], resync: false });
    expect(await log.head(other)).toBe(0n);

    // Retention (everything is older than 0 ms): a resume from before the removed ids cannot be served.
    expect(await purgeEvents(srv.deps.db, 0)).toBeGreaterThanOrEqual(5);
    expect(await log.after(tenant, 2n, 10)).toEqual({ events: [], resync: true });
    expect(await log.after(tenant, 5n, 10)).toEqual({ events: [], resync: false });
    await api('POST', '/v1/patients', { body: patientInput() });
    const next = await waitForHead(srv, tenant, 6n);
    expect(next.events.map((e) => e.id)).toEqual(['6']);
  });

  it('the application role cannot change or remove events, nor write them directly', async () => {
    const tenant = await srv.newTenant();
    for (const stmt of [
      sql`update events set type = 'x'`,
      sql`delete from events`,
      sql`insert into events (tenant_id, id, type, resource_type, resource_id, version, occurred_at) values (${tenant}, 999, 'x', 'x', 'x', 1, now())`,
      sql`update event_heads set last_id = 0`,
      sql`delete from outbox`,
    ]) {
      const err = await srv.deps.db.autocommit(tenant, (q) => q.execute(stmt)).then(() => undefined, (e: unknown) => e);
      expect(pgError(err)?.code).toBe('42501');
    }
  });
});

async function waitForHead(srv: TestServer, tenant: string, head: bigint) {
  await waitFor(async () => (await srv.deps.events.log.head(tenant)) >= head, 10_000, () => `head ${head} not reached`);
  return srv.deps.events.log.after(tenant, head - 1n, 10);
}

describe.runIf(storageModes().includes('postgres'))('events across instances (PostgreSQL + Redis)', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    [a, b] = await Promise.all([startServer('postgres', { EVENTS_DISPATCH_INTERVAL_MS: '20' }), startServer('postgres', { EVENTS_DISPATCH_INTERVAL_MS: '20' })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('every instance hears every event once, whichever instance took the write or dispatched it', async () => {
    const tenant = await a.newTenant();
    const heard = { a: [] as string[], b: [] as string[] };
    const offs = [a.deps.events.bus.subscribe((e) => e.tenantId === tenant && heard.a.push(e.id)), b.deps.events.bus.subscribe((e) => e.tenantId === tenant && heard.b.push(e.id))];
    try {
      const apiA = client(a.url, await a.token({ tenant, roles: ['admin'] }));
      const apiB = client(b.url, await b.token({ tenant, roles: ['admin'] }));
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? apiA : apiB)('POST', '/v1/patients', { body: patientInput() })));
      const all = Array.from({ length: 20 }, (_, i) => String(i + 1));
      await waitFor(() => heard.a.length >= 20 && heard.b.length >= 20, 10_000, () => `a heard ${heard.a.length}, b heard ${heard.b.length}`);
      expect([...heard.a].sort((x, y) => Number(x) - Number(y))).toEqual(all);
      expect([...heard.b].sort((x, y) => Number(x) - Number(y))).toEqual(all);
    } finally {
      offs.forEach((off) => off());
    }
  });
});
