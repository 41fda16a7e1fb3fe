// Two real `carebase serve` processes on one PostgreSQL and one Redis, as a deployment of several
// instances runs: a subscriber on one instance receives the events of writes made on either, every
// committed event exactly once and in id order (checked against the `events` table itself), and
// room presence is shared across the processes. Runs only when TEST_DATABASE_URL and
// TEST_REDIS_URL are set (the harness then provides postgresUrl and redisUrl).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/config.js';
import { patientInput } from './helpers/factories.js';
import { client, ifMatch, type Client } from './helpers/http.js';
import { cleanupDirs, cliToken, keyFileToken, killAll, runCli, startServe, tempDir, type Server } from './helpers/process.js';
import { phiInLogs } from './helpers/phi-guard.js';
import { simpleQuestionnaire } from './helpers/questionnaires.js';
import { openSse, openWs, until, sleep, type SseClient, type WsClient } from './helpers/realtime.js';

const postgresUrl = inject('postgresUrl');
const redisUrl = inject('redisUrl');

interface LoggedEvent {
  id: string;
  type: string;
  resource: { type: string; id: string; version: number };
}

describe.runIf(postgresUrl && redisUrl)('real time across two carebase serve processes (PostgreSQL + Redis)', () => {
  let a: Server;
  let b: Server;
  const tenant = `mp-${randomBytes(5).toString('hex')}`;
  const open: { close(): void }[] = [];

  beforeAll(async () => {
    const key = () => randomBytes(32).toString('base64');
    // One deployment: one database, one Redis, and the same keys everywhere (field encryption,
    // blind index, audit HMAC). Each process has its own DATA_DIR, as separate hosts would.
    const shared = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      SEED_DEMO: 'false',
      DATABASE_URL: postgresUrl!,
      DATABASE_POOL_SIZE: '5',
      REDIS_URL: redisUrl!,
      ENCRYPTION_KEYS: `mp:${key()}`,
      BLIND_INDEX_KEY: key(),
      AUDIT_HMAC_KEY: key(),
      EVENTS_DISPATCH_INTERVAL_MS: '20',
      REALTIME_HEARTBEAT_MS: '500',
      ...Object.fromEntries(['READ', 'WRITE', 'AUTH', 'REALTIME'].map((g) => [`RATE_LIMIT_${g}_POINTS`, '1000000'])),
    };
    a = await startServe(tempDir(), shared);
    // B trusts A's development issuer, as instances of one deployment share an identity provider.
    b = await startServe(tempDir(), { ...shared, AUTH_JWKS_URL: `${a.url}/.well-known/jwks.json`, AUTH_ISSUER: DEV_ISSUER, AUTH_AUDIENCE: DEV_AUDIENCE });
    const created = await runCli(['tenant', 'create', tenant], a.env);
    expect(created.code, created.stderr).toBe(0);
  });

  afterAll(async () => {
    for (const c of open) c.close();
    const logs = [a, b].flatMap((s) => (s ? `${s.proc.stdout()}\n${s.proc.stderr()}`.split('\n') : []));
    await killAll();
    cleanupDirs();
    expect(phiInLogs(logs)).toEqual([]);
  });

  /** The tenant's events in the log after `after`, in id order, that match. */
  async function logged(after: string, match: (e: { resource_type: string; resource_id: string; questionnaire_id: string | null }) => boolean): Promise<LoggedEvent[]> {
    const c = new pg.Client({ connectionString: postgresUrl! });
    await c.connect();
    try {
      const r = await c.query<{ id: string; type: string; resource_type: string; resource_id: string; version: number; questionnaire_id: string | null }>(
        'select id::text, type, resource_type, resource_id, version, questionnaire_id::text from events where tenant_id = $1 and events.id > $2 order by events.id',
        [tenant, after],
      );
      return r.rows.filter(match).map((e) => ({ id: e.id, type: e.type, resource: { type: e.resource_type, id: e.resource_id, version: e.version } }));
    } finally {
      await c.end();
    }
  }

  it('a subscriber on either process receives every committed event of writes made on both, in id order, exactly once', { timeout: 60_000 }, async () => {
    // Minted by the real CLI from A's DATA_DIR (A's development issuer); B verifies it through A's JWKS.
    const token = await cliToken(a.env, ['--tenant', tenant, '--role', 'admin', '--sub', 'mp-admin']);
    const onA = client(a.url, token);
    const onB = client(b.url, token);
    const q = await onA('POST', '/v1/questionnaires', { body: simpleQuestionnaire({ status: 'active' }) });
    expect(q.status, q.text).toBe(201);
    const watched = (await onB('POST', '/v1/patients', { body: patientInput() })).body as { id: string; version: number };
    const other = (await onA('POST', '/v1/patients', { body: patientInput() })).body as { id: string; version: number };
    const topics = [`patients/${watched.id}`, `questionnaires/${q.body.id}/responses`];

    // SSE on A, a WebSocket on B: both follow the watched patient and the questionnaire's responses.
    const sse: SseClient = openSse(a.url, topics, { token });
    open.push(sse);
    const ready = await sse.next((m) => m.event === 'ready', 10_000);
    const ws: WsClient = await openWs(b.url, { token });
    open.push(ws);
    const subscribed = await ws.call({ type: 'subscribe', topics }, 10_000);
    expect(subscribed.type).toBe('subscribed');

    // Writes on both processes at once: the watched patient alternately on A and B, the other
    // patient (not followed) on B and A, two responses created and saved on either.
    const instances: [Client, Client] = [onA, onB];
    const patchChain = async (id: string, start: number, n: number, offset: number) => {
      let v = start;
      for (let i = 0; i < n; i++) {
        const r = await instances[(i + offset) % 2]!('PATCH', `/v1/patients/${id}`, { body: { gender: i % 2 ? 'male' : 'female' }, headers: ifMatch(v) });
        expect(r.status, r.text).toBe(200);
        v = r.body.version;
      }
      return v;
    };
    const responseChain = async (offset: number, n: number) => {
      const api = instances[offset % 2]!;
      const r = await api('POST', '/v1/questionnaire-responses', { body: { questionnaireId: q.body.id, patientId: other.id } });
      expect(r.status, r.text).toBe(201);
      let v = r.body.version as number;
      for (let i = 0; i < n; i++) {
        const s = await instances[(i + offset + 1) % 2]!('PATCH', `/v1/questionnaire-responses/${r.body.id}`, { body: { item: [{ linkId: 'smoker', answer: [{ valueBoolean: i % 2 === 0 }] }] }, headers: ifMatch(v) });
        expect(s.status, s.text).toBe(200);
        v = s.body.version;
      }
      return { id: r.body.id as string, version: v };
    };
    const [watchedLast, , r1, r2] = await Promise.all([patchChain(watched.id, watched.version, 24, 0), patchChain(other.id, other.version, 24, 1), responseChain(0, 10), responseChain(1, 10)]);

    const isFollowed = (e: { resource: { type: string; id: string } }) => (e.resource.type === 'patients' && e.resource.id === watched.id) || [r1.id, r2.id].includes(e.resource.id);
    const sseEvents = () => sse.events().map((m) => m.data as LoggedEvent);
    const wsEvents = () => ws.all.filter((m) => typeof m.type === 'string' && m.type.includes('.')) as LoggedEvent[];
    const hasAll = (list: LoggedEvent[]) =>
      [
        { id: watched.id, version: watchedLast },
        r1,
        r2,
      ].every((x) => list.some((e) => e.resource.id === x.id && e.resource.version === x.version));
    await until(() => hasAll(sseEvents()) && hasAll(wsEvents()), 15_000, 'the last events on both subscribers');
    await sleep(300); // anything extra (a duplicate) would arrive now

    // Exactly what the event log committed for these topics: 24 patient changes, 2 × (1 + 10) response changes.
    const fromLog = (after: string) =>
      logged(after, (e) => (e.resource_type === 'patients' && e.resource_id === watched.id) || (e.resource_type === 'questionnaire-responses' && e.questionnaire_id === q.body.id));
    const expectedSse = await fromLog(ready.data.lastEventId);
    const expectedWs = await fromLog(subscribed.lastEventId);
    expect(expectedSse).toHaveLength(24 + 22);
    expect(expectedWs).toEqual(expectedSse);
    const shape = (list: LoggedEvent[]) => list.map((e) => ({ id: e.id, type: e.type, resource: e.resource }));
    expect(shape(sseEvents())).toEqual(expectedSse);
    expect(shape(wsEvents())).toEqual(expectedWs);
    // SSE ids are the events' ids; nothing of the unfollowed patient came through.
    expect(sse.events().map((m) => m.id)).toEqual(expectedSse.map((e) => e.id));
    expect(sseEvents().every(isFollowed) && wsEvents().every(isFollowed)).toBe(true);
    expect(sse.errors).toEqual([]);
  });

  it('presence is shared: members on A and B see each other join, and closing B\'s socket is a leave on A', { timeout: 30_000 }, async () => {
    const room = `ward-${randomBytes(3).toString('hex')}`;
    const onA = await openWs(a.url, { token: await keyFileToken(a.dataDir, { tenant, roles: ['clinician'], sub: 'member-on-a' }) });
    open.push(onA);
    const onB = await openWs(b.url, { token: await keyFileToken(a.dataDir, { tenant, roles: ['clinician'], sub: 'member-on-b' }) });
    open.push(onB);
    const ja = await onA.call({ type: 'subscribe', topics: [`rooms/${room}`] }, 10_000);
    expect(ja.rooms[room].map((m: { sub: string }) => m.sub)).toEqual(['member-on-a']);
    const jb = await onB.call({ type: 'subscribe', topics: [`rooms/${room}`] }, 10_000);
    expect(jb.rooms[room].map((m: { sub: string }) => m.sub).sort()).toEqual(['member-on-a', 'member-on-b']);
    const joined = await onA.next((m) => m.type === 'member-joined' && m.member.sub === 'member-on-b', 10_000);
    expect(joined.room).toBe(room);

    onB.close();
    const left = await onA.next((m) => m.type === 'member-left' && m.member.sub === 'member-on-b', 10_000);
    expect(left.room).toBe(room);
    expect(left.member.memberId).toBe(joined.member.memberId);
    await sleep(1500); // three heartbeats: an expiry must not announce the same leave again
    expect(onA.all.filter((m) => m.type === 'member-left')).toHaveLength(1);
    expect(onA.all.filter((m) => m.type === 'member-joined')).toHaveLength(1);
  });
});
