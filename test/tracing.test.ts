// OpenTelemetry tracing in a real `carebase serve`, exporting to an OTLP/HTTP receiver run here:
// a request's own trace ID is continued (traceparent), with the request's span and a span per
// database operation (either driver) and, on PostgreSQL + Redis, per cache command; the
// request's log line names the trace; the outbox event of its write keeps the traceparent; the
// alert webhook call carries one; nothing of the patient or of a query string reaches a span; the
// spans still buffered at SIGTERM are exported. And with tracing off, nothing of OpenTelemetry is
// loaded and no log line has trace fields.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { JOBS } from '../src/jobs/registry.js';
import { createPgliteDb } from '../src/platform/db/pglite.js';
import { createBullmqQueue } from '../src/platform/jobs/bullmq-queue.js';
import { createLogger } from '../src/platform/log.js';
import { ownDatabase } from './helpers/db.js';
import { deleteKeys } from './helpers/redis.js';
import { patientInput } from './helpers/factories.js';
import { client } from './helpers/http.js';
import { cleanupDirs, cliEnv, freePort, keyFileToken, killAll, migratedDataDir, procScope, runCli, stop, tempDir, waitFor, type Server } from './helpers/process.js';
import { phiInLogs } from './helpers/phi-guard.js';

const postgresUrl = inject('postgresUrl');
const redisUrl = inject('redisUrl');

afterAll(async () => {
  await killAll();
  cleanupDirs();
});

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's numbering: 1 internal, 2 server, 3 client. */
  kind: number;
  scope: string;
  attributes: Record<string, unknown>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: AnyValue[] } };
const valueOf = (v: AnyValue): unknown => v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(valueOf);

/** An OTLP/HTTP receiver (JSON, as the exporter sends) and a webhook endpoint, in this process. */
async function startReceiver() {
  const spans: Span[] = [];
  const bodies: string[] = [];
  const alerts: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const text = body.toString('utf8');
        bodies.push(text);
        for (const rs of JSON.parse(text).resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const attributes = Object.fromEntries((s.attributes ?? []).map((a: { key: string; value: AnyValue }) => [a.key, valueOf(a.value)]));
              spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind, scope: ss.scope?.name ?? '', attributes });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else if (req.method === 'POST' && req.url?.startsWith('/alert/')) {
        alerts.push(req.headers);
        res.writeHead(200).end('ok');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, spans, alerts, raw: () => bodies.join('\n'), close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * A NODE_OPTIONS preload that records every module the process resolves (ES modules, through a
 * loader hook) and every CommonJS module it holds at exit: what a process loaded, seen from outside.
 */
function moduleRecorder(dir: string) {
  const out = join(dir, 'modules.log');
  const hooks = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(out)}, r.url + '\\n');
  return r;
}`;
  const preload = join(dir, 'record-modules.mjs');
  writeFileSync(
    preload,
    `import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});
process.on('exit', () => appendFileSync(${JSON.stringify(out)}, Object.keys(createRequire(import.meta.url)('node:module')._cache).join('\\n') + '\\n'));
`,
  );
  return {
    env: { NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` },
    loaded: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : []),
  };
}
// The SDK and the exporter. Not @opentelemetry/api: prom-client loads that itself.
const OTEL_MODULE = /[/\\]@opentelemetry[/\\](?!api[/\\])/;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const logLines = (srv: Server) =>
  srv.proc
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/**
 * The traceparent of the event of `resourceId`'s creation (undefined: no such event): from `events`
 * once dispatched, or from the outbox, which carries it the same way — a server stopped right after
 * the write may not have dispatched it yet (seen on a fast machine).
 */
async function eventTraceparent(mode: 'embedded' | 'server', dataDir: string, resourceId: string): Promise<string | null | undefined> {
  const q = 'select traceparent from events where resource_id = $1 and type = $2 union all select traceparent from outbox where resource_id = $1 and type = $2';
  if (mode === 'server') {
    const c = new pg.Client({ connectionString: postgresUrl! });
    await c.connect();
    try {
      return (await c.query<{ traceparent: string | null }>(q, [resourceId, 'patient.created'])).rows[0]?.traceparent;
    } finally {
      await c.end();
    }
  }
  // PGlite: one process at a time, so after the server has stopped.
  const db = await createPgliteDb(join(dataDir, 'pg'));
  try {
    return (await db.withOwner((s) => s.query<{ traceparent: string | null }>(q, [resourceId, 'patient.created'])))[0]?.traceparent;
  } finally {
    await db.close();
  }
}

const modes = [['embedded', true], ['server', Boolean(postgresUrl && redisUrl)]] as const;

describe.concurrent('tracing (OTEL_EXPORTER_OTLP_ENDPOINT) in carebase serve', () => {
  for (const [mode, available] of modes) {
    it.runIf(available)(`${mode}: continues the caller's trace with request, database and cache spans, names it in the log line and the outbox event, and keeps PHI out of spans`, { timeout: 90_000 }, async ({ onTestFinished }) => {
      const cli = procScope(onTestFinished);
      const recv = await startReceiver();
      onTestFinished(() => recv.close());
      const dir = mode === 'embedded' ? migratedDataDir() : tempDir();
      const modules = moduleRecorder(dir);
      const tenant = mode === 'embedded' ? 'demo' : `tr-${hex(5)}`;
      const storage: Record<string, string> = mode === 'server' ? { DATABASE_URL: postgresUrl!, REDIS_URL: redisUrl!, DATABASE_POOL_SIZE: '3' } : {};
      if (mode === 'server') {
        const created = await runCli(['tenant', 'create', tenant], cliEnv({ DATA_DIR: dir, ...storage }));
        expect(created.code, created.stderr).toBe(0);
      }
      const srv = await cli.serve(dir, { NODE_ENV: 'test', LOG_LEVEL: 'info', ...storage, OTEL_EXPORTER_OTLP_ENDPOINT: recv.url, OTEL_SERVICE_NAME: `carebase-${mode}`, ...modules.env });
      const api = client(srv.url, await keyFileToken(dir, { tenant, roles: ['clinician'], sub: 'tracer' }));

      // The caller's trace: every request below continues it.
      const traceId = hex(16);
      const parentId = hex(8);
      const marker = `Qx${hex(6)}`; // a name, an email and a search term found nowhere else
      const email = `${marker.toLowerCase()}@example.org`;
      const requestId = `trace-${hex(6)}`;
      const headers = { traceparent: `00-${traceId}-${parentId}-01` };
      const created = await api('POST', '/v1/patients', {
        body: patientInput({ name: { given: [marker], family: `${marker}son` }, email }),
        headers: { ...headers, 'x-request-id': requestId },
      });
      expect(created.status, created.text).toBe(201);
      const id = created.body.id as string;
      expect((await api('GET', `/v1/patients/${id}`, { headers })).body.email).toBe(email);
      const found = await api('GET', `/v1/patients?name=${marker}&limit=5`, { headers });
      expect(found.body.data.map((p: { id: string }) => p.id)).toEqual([id]);
      // A malformed or invalid traceparent is no trace to continue: the request starts its own.
      for (const bad of ['not-a-traceparent', `00-${'0'.repeat(32)}-${parentId}-01`, `00-${traceId}-${parentId}`]) {
        expect((await api('GET', `/v1/patients/${id}`, { headers: { traceparent: bad } })).status).toBe(200);
      }
      if (mode === 'server') {
        await waitFor(async () => (await eventTraceparent(mode, dir, id)) !== undefined, 10_000, () => 'the event of the write');
        expect(await eventTraceparent(mode, dir, id)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      }

      // Nothing was exported yet (batches go every 5 s): what follows was flushed at shutdown.
      expect(await stop(srv.proc)).toEqual({ code: 0, signal: null });
      if (mode === 'embedded') expect(await eventTraceparent(mode, dir, id)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

      const mine = recv.spans.filter((s) => s.traceId === traceId);
      expect(new Set(mine.map((s) => s.scope))).toEqual(new Set(['carebase']));
      // One SERVER span per request, a child of the caller's span, named by method and route.
      const servers = mine.filter((s) => s.kind === 2);
      expect(servers.map((s) => s.name).sort()).toEqual(['GET /v1/patients', 'GET /v1/patients/:id', 'POST /v1/patients']);
      for (const s of servers) expect(s).toMatchObject({ parentSpanId: parentId, attributes: { 'http.route': expect.stringMatching(/^\/v1\/patients/), 'http.response.status_code': expect.any(Number) } });
      const serverIds = new Set(servers.map((s) => s.spanId));
      // One CLIENT span per database operation, on either driver, under its request's span.
      const dbOps = mine.filter((s) => s.attributes['db.system.name'] === 'postgresql');
      expect(dbOps.map((s) => s.name)).toContain('db.read');
      expect(dbOps.some((s) => s.name === 'db.tx' || s.name === 'db.autocommit')).toBe(true); // the write
      for (const s of dbOps) expect(s).toMatchObject({ kind: 3, parentSpanId: expect.toSatisfy((id: string) => serverIds.has(id)) });
      expect(new Set(dbOps.map((s) => s.attributes['carebase.db.driver']))).toEqual(new Set([mode === 'server' ? 'postgres' : 'pglite']));
      // Redis (server mode): each cache command, naming the operation only — keys hold ids, values resources.
      const redis = mine.filter((s) => s.attributes['db.system.name'] === 'redis');
      if (mode === 'server') {
        expect(redis.map((s) => s.name)).toEqual(expect.arrayContaining(['cache.get', 'cache.put']));
        for (const r of redis) expect(r).toMatchObject({ kind: 3, attributes: { 'db.operation.name': expect.stringMatching(/^(get|put|tombstone)$/) } });
      } else {
        expect(redis).toEqual([]); // the in-process cache makes no spans
      }
      const roots = recv.spans.filter((s) => s.kind === 2 && s.parentSpanId === '' && s.name === 'GET /v1/patients/:id');
      expect(roots).toHaveLength(3);
      for (const r of roots) expect(r.traceId).not.toBe(traceId);
      // Probes are not traced.
      expect(recv.spans.filter((s) => String(s.attributes['url.path'] ?? '').startsWith('/health'))).toEqual([]);

      // No value of the patient, nor the query string, anywhere in what was exported.
      const exported = recv.raw().toLowerCase();
      expect(exported.length).toBeGreaterThan(1000);
      for (const v of [marker.toLowerCase(), email, `name=${marker.toLowerCase()}`, 'núñez', '1 test st', '555 010']) expect(exported).not.toContain(v);
      expect(recv.spans.filter((s) => 'url.query' in s.attributes || 'client.address' in s.attributes)).toEqual([]);

      // The request's log line names its trace.
      const line = logLines(srv).find((l) => l.reqId === requestId && l.msg === 'request');
      expect(line).toMatchObject({ trace_id: traceId, span_id: expect.stringMatching(/^[0-9a-f]{16}$/) });
      const output = `${srv.proc.stdout()}\n${srv.proc.stderr()}`;
      expect(output.toLowerCase()).not.toContain(marker.toLowerCase());
      expect(phiInLogs(output.split('\n'))).toEqual([]);
      // The recorder saw the SDK load (so that the test with tracing off means something).
      expect(modules.loaded().some((m) => OTEL_MODULE.test(m))).toBe(true);
    });
  }

  for (const [mode, available] of modes) {
    it.runIf(available)(`${mode}: carebase worker runs each job in a span of its own: a scheduled run starts a trace, an enqueued job continues its producer's`, { timeout: 90_000 }, async ({ onTestFinished }) => {
      const cli = procScope(onTestFinished);
      const recv = await startReceiver();
      onTestFinished(() => recv.close());
      // Sealing and sweeping act on every tenant: on PostgreSQL, a database of the test's own.
      const own = mode === 'server' ? await ownDatabase() : undefined;
      if (own) {
        onTestFinished(() => own.drop());
        await own.migrate();
      }
      const prefix = `carebase-test:jobs:${hex(6)}`;
      onTestFinished(() => deleteKeys(prefix));
      const storage: Record<string, string> = own ? { DATABASE_URL: own.url, REDIS_URL: redisUrl!, DATABASE_POOL_SIZE: '3', JOBS_PREFIX: prefix } : {};
      const dir = mode === 'embedded' ? migratedDataDir() : tempDir();
      const worker = cli.spawn(['worker'], cliEnv({ DATA_DIR: dir, NODE_ENV: 'test', LOG_LEVEL: 'info', AUDIT_SEAL_INTERVAL_MS: '300', ...storage, OTEL_EXPORTER_OTLP_ENDPOINT: recv.url }));
      const completed = (job: string) => worker.stdout().split('\n').filter((l) => l.includes(`"job":"${job}"`) && l.includes('"msg":"job completed"'));
      await waitFor(() => completed('audit.seal').length >= 2, 60_000, () => `audit.seal runs\n${worker.stdout()}\n${worker.stderr()}`);

      // A producer elsewhere (an API instance handling a traced request) enqueues a job with that
      // request's span (only that span is made up here).
      const traceId = hex(16);
      const parentId = hex(8);
      if (mode === 'server') {
        const producer = createBullmqQueue({ catalog: JOBS, log: createLogger('silent'), attempts: 1, backoffMs: 100, failedRetention: { maxAgeMs: 60_000, maxCount: 10 }, url: redisUrl!, prefix });
        try {
          const trace = { traceId, spanId: parentId, traceparent: `00-${traceId}-${parentId}-01` };
          const id = await producer.enqueue('idempotency.sweep', {}, { requestId: 'req-traced-job', trace });
          await waitFor(() => completed('idempotency.sweep').some((l) => l.includes(`"jobId":"${id}"`)), 30_000, () => 'the enqueued job');
        } finally {
          await producer.close();
        }
      }
      expect(await stop(worker)).toEqual({ code: 0, signal: null });

      const jobSpans = recv.spans.filter((s) => s.scope === 'carebase' && s.name.startsWith('job '));
      // Scheduled: a root span per run (OTLP kind 5, CONSUMER), its database work inside it.
      expect(jobSpans.find((s) => s.name === 'job audit.seal')).toMatchObject({ kind: 5, parentSpanId: '', attributes: { 'messaging.destination.name': 'audit.seal', 'messaging.operation.type': 'process', 'carebase.job.attempt': 1 } });
      const sweep = jobSpans.find((s) => s.name === 'job idempotency.sweep' && s.parentSpanId === '');
      expect(sweep).toMatchObject({ kind: 5, attributes: { 'messaging.system': mode === 'server' ? 'bullmq' : 'carebase' } });
      expect(recv.spans.some((s) => s.traceId === sweep!.traceId && s.parentSpanId === sweep!.spanId && s.name === 'db.tx')).toBe(true);
      if (mode === 'server') {
        // Enqueued: a child of the producer's span, in the producer's trace.
        const swept = jobSpans.filter((s) => s.name === 'job idempotency.sweep' && s.traceId === traceId);
        expect(swept).toHaveLength(1);
        expect(swept[0]).toMatchObject({ kind: 5, parentSpanId: parentId, attributes: { 'messaging.system': 'bullmq' } });
        expect(recv.spans.some((s) => s.traceId === traceId && s.parentSpanId === swept[0]!.spanId && s.name === 'db.tx')).toBe(true);
        // Its log lines name the trace and the request that caused it.
        const line = JSON.parse(completed('idempotency.sweep').find((l) => l.includes('req-traced-job'))!) as Record<string, unknown>;
        expect(line).toMatchObject({ reqId: 'req-traced-job', trace_id: traceId });
      }
    });
  }

  it('the alert webhook call carries a traceparent, and its span keeps only the webhook\'s origin', { timeout: 90_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const recv = await startReceiver();
    onTestFinished(() => recv.close());
    // A Redis nobody listens on: after two failed checks the monitor posts "redis is DOWN".
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const srv = await cli.serve(migratedDataDir(), {
      NODE_ENV: 'test',
      SEED_DEMO: 'false',
      REDIS_URL: deadRedis,
      HEALTH_CHECK_INTERVAL_MS: '100',
      ALERT_WEBHOOK_URL: `${recv.url}/alert/T000/secret-path`,
      OTEL_EXPORTER_OTLP_ENDPOINT: recv.url,
    });
    await waitFor(() => recv.alerts.length > 0, 20_000, () => 'the alert webhook call');
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(recv.alerts[0]!.traceparent));
    expect(m, `traceparent header: ${recv.alerts[0]!.traceparent}`).not.toBeNull();
    expect(await stop(srv.proc)).toEqual({ code: 0, signal: null });
    const call = recv.spans.find((s) => s.traceId === m![1] && s.spanId === m![2]);
    expect(call).toMatchObject({ scope: 'carebase', name: 'POST', kind: 3, parentSpanId: '', attributes: { 'url.full': recv.url, 'http.request.method': 'POST' } });
    expect(recv.raw()).not.toContain('secret-path');
  });

  it('off without the endpoint: nothing of OpenTelemetry is loaded, no trace fields are logged, events carry no traceparent', { timeout: 90_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = migratedDataDir();
    const modules = moduleRecorder(dir);
    const srv = await cli.serve(dir, { NODE_ENV: 'test', LOG_LEVEL: 'info', ...modules.env });
    const api = client(srv.url, await keyFileToken(dir, { tenant: 'demo', roles: ['clinician'], sub: 'untraced' }));
    const created = await api('POST', '/v1/patients', { body: patientInput(), headers: { traceparent: `00-${hex(16)}-${hex(8)}-01` } });
    expect(created.status, created.text).toBe(201);
    expect(await stop(srv.proc)).toEqual({ code: 0, signal: null });
    const loaded = modules.loaded();
    expect(loaded.length).toBeGreaterThan(50); // the recorder worked
    expect(loaded.filter((m) => OTEL_MODULE.test(m))).toEqual([]);
    const lines = logLines(srv);
    expect(lines.some((l) => l.msg === 'request')).toBe(true);
    expect(lines.filter((l) => 'trace_id' in l || 'span_id' in l)).toEqual([]);
    expect(await eventTraceparent('embedded', dir, created.body.id)).toBeNull();
  });

  it('refuses malformed tracing settings at start: exit 2, one line per variable', { timeout: 60_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const r = await cli.run(['serve'], cliEnv({ DATA_DIR: tempDir(), OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', OTEL_TRACES_SAMPLER_ARG: '2' }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ {2}OTEL_EXPORTER_OTLP_ENDPOINT: must be an http\(s\) URL/m);
    expect(r.stderr).toMatch(/^ {2}OTEL_TRACES_SAMPLER_ARG: /m);
  });
});
