// Starts the real application on a free loopback port, on PGlite (a copy of the migrated
// template) or on the real PostgreSQL, with logs captured for assertions.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import type { Role } from '../../src/auth/principal.js';
import { loadConfig } from '../../src/config.js';
import { createDeps, type Deps } from '../../src/container.js';
import { createLogger } from '../../src/platform/log.js';
import { client, type Client } from './http.js';
import { phiInLogs } from './phi-guard.js';

export type Mode = 'pglite' | 'postgres';

/** PGlite always; the real PostgreSQL too when TEST_DATABASE_URL is set. */
export function storageModes(): Mode[] {
  return inject('postgresUrl') ? ['pglite', 'postgres'] : ['pglite'];
}

export interface TestServer {
  url: string;
  deps: Deps;
  app: FastifyInstance;
  /** Every log line written so far, raw. */
  logs: string[];
  dataDir: string;
  token(c: { tenant: string; roles: Role[]; sub?: string; patientId?: string }): Promise<string>;
  /** A new, empty, provisioned tenant, so tests never see each other's data. */
  newTenant(): Promise<string>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Runs after buildApp and before listen: tests may add routes of their own (e.g. one that throws). */
  beforeListen?: (app: FastifyInstance, deps: Deps) => void | Promise<void>;
}

export async function startServer(mode: Mode, env: Record<string, string> = {}, opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'carebase-srv-'));
  if (mode === 'pglite') cpSync(inject('pgliteTemplate'), join(dataDir, 'pg'), { recursive: true });
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir,
    SEED_DEMO: 'false',
    // Suites fire thousands of requests as one user; the rate-limit suite sets its own limits.
    ...Object.fromEntries(['READ', 'WRITE', 'AUTH', 'EXPORT', 'SYNC', 'REALTIME'].map((g) => [`RATE_LIMIT_${g}_POINTS`, '1000000'])),
    // Server mode is PostgreSQL plus Redis (when TEST_REDIS_URL is set), as in production.
    ...(mode === 'postgres' ? { DATABASE_URL: inject('postgresUrl')!, DATABASE_POOL_SIZE: '20', ...(inject('redisUrl') ? { REDIS_URL: inject('redisUrl')! } : {}) } : {}),
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const deps = await createDeps(config, createLogger(config.logLevel, sink));
  const app = await buildApp(deps);
  await opts.beforeListen?.(app, deps);
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: address,
    deps,
    app,
    logs,
    dataDir,
    token: (c) => deps.devIssuer!.sign({ tenant: c.tenant, roles: c.roles, sub: c.sub ?? 'tester', ...(c.patientId ? { patientId: c.patientId } : {}) }),
    async newTenant() {
      const id = `t-${randomBytes(6).toString('hex')}`;
      await deps.tenants.create(id, `Tenant ${id}`);
      return id;
    },
    async close() {
      await app.close();
      await deps.close();
      rmSync(dataDir, { recursive: true, force: true });
      const leaks = phiInLogs(logs);
      if (leaks.length > 0) throw new Error(`PHI in the server's logs: ${leaks.join(', ')}`);
    },
  };
}

/** A client acting in `tenant` with one role (a patient role gets a random patient id of its own). */
export async function clientAs(srv: TestServer, tenant: string, role: Role): Promise<Client> {
  return client(srv.url, await srv.token({ tenant, roles: [role], sub: `${role}-user`, ...(role === 'patient' ? { patientId: randomUUID() } : {}) }));
}
