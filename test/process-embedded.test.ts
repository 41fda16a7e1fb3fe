// The real `carebase serve` process on the embedded database (PGlite in DATA_DIR): first start on
// an empty directory, restart keeping data, and graceful shutdown with a request in flight.
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { patientInput } from './helpers/factories.js';
import { client } from './helpers/http.js';
import { cleanupDirs, keyFileToken, killAll, migratedDataDir, procScope, sleep, stop, tempDir, waitFor } from './helpers/process.js';

// Each test kills its own children when it finishes (procScope); this is the file-wide safety net.
afterAll(async () => {
  await killAll();
  cleanupDirs();
});

const CLINICIAN = ['--tenant', 'demo', '--role', 'clinician', '--sub', 'alice'];
const ALICE = { tenant: 'demo', roles: ['clinician' as const], sub: 'alice' };

// The scenarios are independent (own DATA_DIR, own port), so they run side by side.
describe.concurrent('carebase serve on the embedded database', () => {
  it('first start on an empty DATA_DIR migrates, seeds the demo tenant and prints how to get a token', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = tempDir();
    const srv = await cli.serve(dir);
    await waitFor(() => srv.proc.stdout().includes('token --tenant demo'), 5000, () => `the token instructions on stdout:\n${srv.proc.stdout()}`);
    expect(srv.proc.stdout()).toContain(`http://localhost:${srv.port}`);

    const token = await cli.token(srv.env, CLINICIAN);
    const api = client(srv.url, token);
    const [locations, providers, patients] = await Promise.all([api('GET', '/v1/locations'), api('GET', '/v1/providers'), api('GET', '/v1/patients?limit=100')]);
    expect(locations.status).toBe(200);
    expect(locations.body.data).toHaveLength(3);
    expect(providers.status).toBe(200);
    expect(providers.body.data).toHaveLength(8);
    expect(patients.status).toBe(200);
    expect(patients.body.data).toHaveLength(50);
    expect(patients.body.page.nextCursor).toBeNull();

    // A patient token sees that patient only.
    const [me, other] = patients.body.data as { id: string }[];
    const mine = client(srv.url, await cli.token(srv.env, ['--tenant', 'demo', '--role', 'patient', '--sub', 'pat-1', '--patient-id', me!.id]));
    const list = await mine('GET', '/v1/patients?limit=100');
    expect(list.status).toBe(200);
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([me!.id]);
    expect((await mine('GET', `/v1/patients/${me!.id}`)).status).toBe(200);
    expect((await mine('GET', `/v1/patients/${other!.id}`)).status).toBe(404);

    expect(await stop(srv.proc)).toEqual({ code: 0, signal: null });
  });

  it('a restart on the same DATA_DIR keeps the data and does not seed again', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = migratedDataDir();
    const first = await cli.serve(dir);
    const token = await keyFileToken(dir, ALICE);
    const created = await client(first.url, token)('POST', '/v1/patients', { body: patientInput() });
    expect(created.status).toBe(201);
    expect(created.body.version).toBe(1);
    expect(await stop(first.proc)).toEqual({ code: 0, signal: null });
    expect(first.proc.stdout()).toContain('demo data seeded');

    const second = await cli.serve(dir);
    // The signing key lives in DATA_DIR too: the token from before the restart still works.
    const api = client(second.url, token);
    const got = await api('GET', `/v1/patients/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
    expect(got.headers.get('etag')).toBe('W/"1"');
    const all = await api('GET', '/v1/patients?limit=100');
    expect(all.body.data).toHaveLength(51);
    expect(second.proc.stdout()).not.toContain('demo data seeded');
    expect(await stop(second.proc)).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM finishes the request in flight, refuses new connections and exits 0', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const srv = await cli.serve(migratedDataDir());
    const token = await keyFileToken(srv.dataDir, ALICE);
    const body = JSON.stringify(patientInput());
    const half = Math.floor(body.length / 2);

    const sock = connect(srv.port, '127.0.0.1');
    const conn = rawConnection(sock);
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
    // Expect: 100-continue makes the server say when it has parsed the headers and routed the
    // request (Node answers 100 before handing the request on), so SIGTERM surely comes after.
    sock.write(
      [
        'POST /v1/patients HTTP/1.1',
        `Host: 127.0.0.1:${srv.port}`,
        `Authorization: Bearer ${token}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        'Expect: 100-continue',
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    await waitFor(() => conn.raw().startsWith('HTTP/1.1 100'), 15_000, () => `100 Continue, got ${JSON.stringify(conn.raw())}`);
    sock.write(body.slice(0, half));
    await sleep(50);

    const signalledAt = Date.now();
    srv.proc.child.kill('SIGTERM');
    await sleep(300);
    await waitFor(() => srv.proc.stdout().includes('shutting down'), 5000, () => 'the shutdown log line');
    expect(srv.proc.hasExited()).toBe(false); // still finishing the request in flight
    expect(await probe(srv.port)).toMatch(/^(ECONNREFUSED|ECONNRESET|503)$/);

    sock.write(body.slice(half));
    const res = await conn.response;
    expect(res.status, res.raw).toBe(201);
    expect(JSON.parse(res.body)).toMatchObject({ version: 1 });

    const exit = await Promise.race([srv.proc.exited, sleep(10_000).then(() => 'timeout' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(srv.proc.stdout()).toContain('shutdown complete');
  });
});

/** What arrives on a raw socket, and the final (non-1xx) response once the server closes it (Connection: close). */
function rawConnection(sock: Socket) {
  let raw = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (raw += d));
  const response = new Promise<{ status: number; body: string; raw: string }>((res, rej) => {
    sock.on('error', rej);
    sock.on('close', () => {
      const final = raw.replace(/^(HTTP\/1\.1 1\d\d[^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(final)?.[1] ?? 0);
      const at = final.indexOf('\r\n\r\n');
      res({ status, body: at < 0 ? '' : final.slice(at + 4), raw });
    });
  });
  return { raw: () => raw, response };
}

/** A new connection attempt: its error code, or the status it got. */
function probe(port: number): Promise<string> {
  return new Promise((res) => {
    const req = request({ host: '127.0.0.1', port, path: '/health/live', agent: false, timeout: 3000 }, (r) => {
      r.resume();
      res(String(r.statusCode));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
    req.end();
  });
}
