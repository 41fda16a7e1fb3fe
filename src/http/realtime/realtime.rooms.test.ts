// Rooms: who may join which room, the member list on join, join/leave/typing messages,
// ROOM_MAX_MEMBERS, cleanup of dead connections; and, on PostgreSQL + Redis, two server instances
// sharing presence and fanning out each other's events.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, ifMatch, type Client } from '../../../test/helpers/http.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { openSse, openWs, until } from '../../../test/helpers/realtime.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../config.js';
import { createRedisPresence } from './presence-redis.js';
import { closeRedis, createRealtimeRedis, keyPrefix } from './redis.js';

const ENV = { ROOM_MAX_MEMBERS: '3', REALTIME_HEARTBEAT_MS: '100', EVENTS_DISPATCH_INTERVAL_MS: '10' };

describe.each(storageModes())('rooms (%s)', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let staff: Client;
  const tokenOf = (sub: string, roles: ('clinician' | 'staff' | 'admin')[] = ['clinician']) => srv.token({ tenant, roles, sub });
  beforeAll(async () => {
    srv = await startServer(mode, ENV);
    tenant = await srv.newTenant();
    staff = client(srv.url, await tokenOf('rooms-admin', ['admin']));
  });
  afterAll(() => srv?.close());

  it('join lists the members; others hear joins, typing and leaves; ROOM_MAX_MEMBERS is enforced with a clear error', async () => {
    const [a, b, c, d] = await Promise.all(['ann', 'bob', 'cid', 'dee'].map(async (s) => openWs(srv.url, { token: await tokenOf(s) })));
    const ja = await a!.call({ type: 'subscribe', topics: ['rooms/intake-desk'] });
    expect(ja).toMatchObject({ type: 'subscribed', topics: ['rooms/intake-desk'], rooms: { 'intake-desk': [{ sub: 'ann', roles: ['clinician'], memberId: expect.any(String), joinedAt: expect.any(String) }] } });
    const jb = await b!.call({ type: 'subscribe', topics: ['rooms/intake-desk'] });
    expect(jb.rooms['intake-desk'].map((m: any) => m.sub).sort()).toEqual(['ann', 'bob']);
    expect((await a!.next((m) => m.type === 'member-joined')).member.sub).toBe('bob');
    await c!.call({ type: 'subscribe', topics: ['rooms/intake-desk'] });
    // The fourth is refused, in the contract's envelope, and joins nothing.
    const full = await d!.call({ type: 'subscribe', topics: ['rooms/intake-desk'] });
    expect(full).toMatchObject({ type: 'error', success: false, error: { code: 'CONFLICT', message: expect.stringMatching(/full.*3/), requestId: expect.any(String) } });
    b!.send({ type: 'typing', room: 'intake-desk', typing: true });
    const typing = await a!.next((m) => m.type === 'typing');
    expect(typing).toMatchObject({ room: 'intake-desk', typing: true, member: { sub: 'bob' } });
    await c!.next((m) => m.type === 'typing');
    expect(b!.all.some((m) => m.type === 'typing')).toBe(false); // not echoed to the typist
    expect((await b!.call({ type: 'unsubscribe', topics: ['rooms/intake-desk'] })).topics).toEqual([]);
    expect((await a!.next((m) => m.type === 'member-left')).member.sub).toBe('bob');
    // A seat is free again.
    const jd = await d!.call({ type: 'subscribe', topics: ['rooms/intake-desk'] });
    expect(jd.rooms['intake-desk'].map((m: any) => m.sub).sort()).toEqual(['ann', 'cid', 'dee']);
    // A closed connection leaves at once.
    c!.close();
    expect((await a!.next((m) => m.type === 'member-left' && m.member.sub === 'cid')).room).toBe('intake-desk');
    // Nobody heard of a member twice.
    expect(a!.all.filter((m) => m.type === 'member-joined' && m.member.sub === 'dee').length).toBe(1);
    for (const x of [a, b, d]) x!.close();
  });

  it('a room named for a record needs read access to it: its patient and staff may join, another patient may not', async () => {
    const q = await staff('POST', '/v1/questionnaires', { body: simpleQuestionnaire({ status: 'active' }) });
    const p1 = (await staff('POST', '/v1/patients', { body: patientInput() })).body;
    const r = (await staff('POST', '/v1/questionnaire-responses', { body: { questionnaireId: q.body.id, patientId: p1.id } })).body;
    const room = `rooms/questionnaire-responses:${r.id}`;
    const own = await openWs(srv.url, { token: await srv.token({ tenant, roles: ['patient'], sub: 'p1', patientId: p1.id }) });
    const other = await openWs(srv.url, { token: await srv.token({ tenant, roles: ['patient'], sub: 'p2', patientId: randomUUID() }) });
    const nurse = await openWs(srv.url, { token: await tokenOf('nurse', ['staff']) });
    expect((await own.call({ type: 'subscribe', topics: [room] })).type).toBe('subscribed');
    expect(await other.call({ type: 'subscribe', topics: [room] })).toMatchObject({ type: 'error', error: { code: 'NOT_FOUND' } });
    expect(await other.call({ type: 'subscribe', topics: [`rooms/questionnaire-responses:${randomUUID()}`] })).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(await nurse.call({ type: 'subscribe', topics: ['rooms/patients:not-a-uuid'] })).toMatchObject({ error: { code: 'VALIDATION_FAILED', details: [{ path: '/topics/0' }] } });
    const joined = await nurse.call({ type: 'subscribe', topics: [room] });
    expect(joined.rooms[`questionnaire-responses:${r.id}`].map((m: any) => m.sub).sort()).toEqual(['nurse', 'p1']);
    // SSE clients can be members too (presence only: typing needs the WebSocket).
    const sse = openSse(srv.url, [room], { token: await tokenOf('watcher') });
    const ready = await sse.next((m) => m.event === 'ready');
    expect(ready.data.rooms[`questionnaire-responses:${r.id}`]).toHaveLength(3);
    nurse.send({ type: 'typing', room, typing: true });
    await sse.next((m) => m.event === 'typing');
    // The room is full (3): refused on the stream before it starts.
    const refused = await client(srv.url, await tokenOf('late'))('GET', `/v1/events?topic=${room}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('CONFLICT');
    sse.close();
    for (const x of [own, other, nurse]) x.close();
  });
});

const serverMode = () => Boolean(inject('postgresUrl') && inject('redisUrl'));

describe.skipIf(!serverMode())('two instances on one PostgreSQL and Redis', () => {
  let one: TestServer;
  let two: TestServer;
  let tenant: string;
  beforeAll(async () => {
    one = await startServer('postgres', ENV);
    // Both accept the tokens of one's development issuer, as instances of one deployment share an identity provider.
    two = await startServer('postgres', { ...ENV, AUTH_JWKS_URL: `${one.url}/.well-known/jwks.json`, AUTH_ISSUER: DEV_ISSUER, AUTH_AUDIENCE: DEV_AUDIENCE });
    tenant = await one.newTenant();
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  it('a subscriber on one instance receives, in order and exactly once, the events of writes made on the other', async () => {
    const token = await one.token({ tenant, roles: ['admin'], sub: 'multi' });
    const onTwo = client(two.url, token);
    const p = (await onTwo('POST', '/v1/patients', { body: patientInput() })).body;
    const ws = await openWs(one.url, { token });
    const sse = openSse(one.url, [`patients/${p.id}`], { token });
    await sse.next((m) => m.event === 'ready');
    await ws.call({ type: 'subscribe', topics: [`patients/${p.id}`] });
    let v = 1;
    for (let i = 0; i < 20; i++) {
      const r = await onTwo('PATCH', `/v1/patients/${p.id}`, { body: { gender: i % 2 ? 'male' : 'female' }, headers: ifMatch(v) });
      v = r.body.version;
    }
    await until(() => ws.all.some((m) => m.resource?.version === v) && sse.events().some((e) => e.data.resource.version === v), 10_000, 'the last event on instance one');
    const versions = (list: any[]) => list.map((m) => m.resource.version);
    const expected = Array.from({ length: 20 }, (_, i) => i + 2);
    expect(versions(ws.all.filter((m) => m.type === 'patient.updated'))).toEqual(expected);
    expect(versions(sse.events().filter((e) => e.event === 'patient.updated').map((e) => e.data))).toEqual(expected);
    ws.close();
    sse.close();
  });

  it('presence is shared: members on both instances see each other, typing and leaves cross; a crashed instance\'s members expire', async () => {
    const a = await openWs(one.url, { token: await one.token({ tenant, roles: ['clinician'], sub: 'on-one' }) });
    const b = await openWs(two.url, { token: await one.token({ tenant, roles: ['clinician'], sub: 'on-two' }) });
    await a.call({ type: 'subscribe', topics: ['rooms/ward-7'] });
    const jb = await b.call({ type: 'subscribe', topics: ['rooms/ward-7'] });
    expect(jb.rooms['ward-7'].map((m: any) => m.sub).sort()).toEqual(['on-one', 'on-two']);
    expect((await a.next((m) => m.type === 'member-joined')).member.sub).toBe('on-two');
    b.send({ type: 'typing', room: 'ward-7', typing: true });
    await a.next((m) => m.type === 'typing' && m.member.sub === 'on-two');

    // A member whose instance died without a word: its entry is never refreshed again.
    const redis = createRealtimeRedis(inject('redisUrl')!, 'test-ghost');
    const sub = createRealtimeRedis(inject('redisUrl')!, 'test-ghost-sub');
    const ghostStore = createRedisPresence(redis, sub, keyPrefix(one.deps.config.database), one.deps.log);
    const ghost = { memberId: randomUUID(), sub: 'ghost', roles: ['staff'], joinedAt: new Date().toISOString() };
    const r = await ghostStore.join(tenant, 'ward-7', ghost, 3, 300);
    expect(r.members.map((m) => m.sub).sort()).toEqual(['ghost', 'on-one', 'on-two']);
    await ghostStore.publish({ kind: 'joined', tenantId: tenant, room: 'ward-7', member: ghost });
    await a.next((m) => m.type === 'member-joined' && m.member.sub === 'ghost');
    // Full now (ROOM_MAX_MEMBERS=3) on either instance…
    const c = await openWs(two.url, { token: await one.token({ tenant, roles: ['clinician'], sub: 'third' }) });
    expect((await c.call({ type: 'subscribe', topics: ['rooms/ward-7'] })).error.code).toBe('CONFLICT');
    // …until the ghost expires: both instances' members are told, exactly once.
    await a.next((m) => m.type === 'member-left' && m.member.sub === 'ghost', 5000);
    await b.next((m) => m.type === 'member-left' && m.member.sub === 'ghost', 5000);
    expect((await c.call({ type: 'subscribe', topics: ['rooms/ward-7'] })).type).toBe('subscribed');
    b.close();
    await a.next((m) => m.type === 'member-left' && m.member.sub === 'on-two');
    expect(a.all.filter((m) => m.type === 'member-left' && m.member.sub === 'ghost')).toHaveLength(1);
    for (const x of [a, c]) x.close();
    await Promise.all([closeRedis(redis), closeRedis(sub)]);
  });
});
