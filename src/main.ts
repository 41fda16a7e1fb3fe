// The `carebase` command: loadConfig() → createDeps() → buildApp() → listen; signals → close().
// Commands import what they use when they run, so `--help` and `token` start instantly.
import { parseArgs } from 'node:util';
import { ROLES, TENANT_ID_PATTERN, type Role } from './auth/principal.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { DEMO_TENANT } from './features/demo/demo-data.js';
import type { Db } from './platform/db/db.js';
import { MigrationError } from './platform/db/migrate.js';
import { createLogger, type Logger } from './platform/log.js';
import { shutdownTracing } from './platform/tracing/tracing.js';


/** Startup failures whose message is the whole story (no stack trace for the operator). */
class OperatorError extends Error {}

const HELP = `Usage: carebase <command> [options]

Commands:
  serve                      Start the API (default). Applies migrations first unless MIGRATE_ON_START=false,
                             and seeds the demo tenant on an empty database when SEED_DEMO is true.
  worker                     Run background jobs only (no API): audit sealing, key sweeps, … Needs a migrated
                             database (waits up to JOBS_SCHEMA_WAIT_MS for it); with REDIS_URL, any number
                             of workers share the jobs of every serve. serve runs a worker too unless JOBS_IN_SERVE=false.
  migrate                    Apply pending database migrations and exit.
  seed                       Seed the demo tenant (no-op when it exists).
  tenant create <id> [--name <name>]
                             Provision a tenant.
  token --tenant <t> --role <r>[,<r>...] --sub <s> [--patient-id <uuid>] [--ttl <seconds>]
                             Print a token from the development issuer (not in production).
  audit verify [--tenant <t> [--head <position>:<hash>]]
                             Check the audit trail of one tenant or all: exit 0 when intact, 1 naming the first
                             record altered, removed, inserted or reordered. --head: a head printed earlier.
  audit seal [--tenant <t>]
                             Seal pending audit records now (the audit.seal job also does, every AUDIT_SEAL_INTERVAL_MS).
  keys rotate [--batch-size <n>] [--tenant <t>]
                             Re-encrypt stored values under the first (primary) key of ENCRYPTION_KEYS, online;
                             prints a JSON summary; exit 0 when every value is under it. See README.md.

Configuration is read from environment variables; see README.md.`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const config = loadConfig();
  switch (command) {
    case 'serve':
      return serve(config);
    case 'worker':
      return worker(config);
    case 'migrate':
      return withDb(config, async (db, log) => {
        const { migrate } = await import('./platform/db/migrate.js');
        const r = await db.withOwner((s) => migrate(s));
        log.info({ applied: r.applied, schemaVersion: r.current }, 'migrations complete');
        process.stdout.write(`Schema at version ${r.current}; applied ${r.applied.length ? r.applied.join(', ') : 'nothing'}.\n`);
      });
    case 'seed':
      return withDb(config, async (db, log) => {
        const { seedDemo } = await import('./features/demo/demo.seed.js');
        const { loadAuditKey } = await import('./features/audit/audit-key.js');
        const { createAuditor } = await import('./features/audit/auditor.js');
        const audit = createAuditor({ db, key: loadAuditKey(config.audit), log, mode: 'sync', flushMs: config.audit.flushMs });
        const { loadFieldKeys } = await import('./container.js');
        const r = await seedDemo(db, log, audit, loadFieldKeys(config.encryption));
        process.stdout.write(r.seeded ? `Seeded tenant ${DEMO_TENANT}: ${r.locations} locations, ${r.providers} providers, ${r.patients} patients.\n` : `Tenant ${DEMO_TENANT} exists; nothing to do.\n`);
      });
    case 'tenant':
      return tenantCommand(config, rest);
    case 'token':
      return tokenCommand(config, rest);
    case 'audit':
      return auditCommand(config, rest);
    case 'keys':
      return keysCommand(config, rest);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function withDb(config: Config, fn: (db: Db, log: Logger) => Promise<void>): Promise<number> {
  const log = createLogger(config.logLevel);
  const { createDb } = await import('./platform/db/index.js');
  const db = await createDb(config.database).catch(asOperatorError);
  try {
    await fn(db, log);
    return 0;
  } finally {
    await db.close();
  }
}

async function tenantCommand(config: Config, args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { name: { type: 'string' } } });
  const [sub, id] = positionals;
  if (sub !== 'create' || !id) throw new UsageError('usage: carebase tenant create <id> [--name <name>]');
  return withDb(config, async (db) => {
    const { createTenantDirectory } = await import('./features/tenants/tenants.service.js');
    const created = await createTenantDirectory(db).create(id, values.name ?? id);
    process.stdout.write(created ? `Tenant ${id} created.\n` : `Tenant ${id} already exists.\n`);
  });
}

async function tokenCommand(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { tenant: { type: 'string' }, role: { type: 'string', multiple: true }, sub: { type: 'string' }, 'patient-id': { type: 'string' }, ttl: { type: 'string' } },
  });
  if (config.auth.kind !== 'dev') throw new UsageError('tokens come from your identity provider when AUTH_JWKS_URL is set');
  const roles = (values.role ?? []).flatMap((r) => r.split(',')).map((r) => r.trim());
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (!values.tenant || !TENANT_ID_PATTERN.test(values.tenant)) throw new UsageError('--tenant <id> is required (lower-case letters, digits, dashes)');
  if (!values.sub) throw new UsageError('--sub <user id> is required');
  if (roles.length === 0 || bad.length > 0) throw new UsageError(`--role must be one or more of ${ROLES.join(', ')}`);
  if (roles.includes('patient') && !values['patient-id']) throw new UsageError('--patient-id <uuid> is required for the patient role');
  const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 7 * 86400) throw new UsageError('--ttl must be whole seconds between 60 and 604800');
  const { loadDevIssuer } = await import('./auth/dev-issuer.js');
  const issuer = await loadDevIssuer(config.auth.keyDir, config.auth.issuer, config.auth.audience);
  const token = await issuer.sign({ tenant: values.tenant, roles: roles as Role[], sub: values.sub, ...(values['patient-id'] ? { patientId: values['patient-id'] } : {}) }, ttl);
  process.stdout.write(`${token}\n`);
  return 0;
}

/** parseArgs with positionals, its errors (unknown or malformed options) as usage errors (exit 2). */
function parseCommandArgs<O extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(args: string[], options: O) {
  try {
    return parseArgs({ args, allowPositionals: true, options, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function checkTenantOption(tenant: string | undefined): void {
  if (tenant !== undefined && !TENANT_ID_PATTERN.test(tenant)) throw new UsageError('--tenant must be a tenant id (lower-case letters, digits, dashes)');
}

/** The tenant named with --tenant (which must exist), or every tenant (which the role must be able to list). */
async function tenantsFor(db: Db, tenant: string | undefined): Promise<string[]> {
  const { listTenantIds, tenantExists } = await import('./features/audit/sealer.js');
  if (tenant !== undefined) {
    if (!(await tenantExists(db, tenant))) throw new UsageError(`no tenant "${tenant}"`);
    return [tenant];
  }
  const list = await listTenantIds(db);
  if (!list.complete) throw new OperatorError('the database role cannot list tenants (row-level security applies to it: not superuser, no BYPASSRLS); name one with --tenant');
  return list.ids;
}

async function auditCommand(config: Config, args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, { tenant: { type: 'string' }, head: { type: 'string' } });
  const [sub, ...extra] = positionals;
  if ((sub !== 'verify' && sub !== 'seal') || extra.length > 0) throw new UsageError('usage: carebase audit verify [--tenant <id> [--head <position>:<hash>]] | carebase audit seal [--tenant <id>]');
  checkTenantOption(values.tenant);
  if (values.head !== undefined && (sub !== 'verify' || values.tenant === undefined)) throw new UsageError('--head goes with audit verify --tenant <id>');
  const [{ existsSync }, { join }, { loadAuditKey }, { sealTenant }, { verifyTenant, describeResult, parseHead }] = await Promise.all([
    import('node:fs'),
    import('node:path'),
    import('./features/audit/audit-key.js'),
    import('./features/audit/sealer.js'),
    import('./features/audit/verify.js'),
  ]);
  const head = values.head === undefined ? undefined : parseHead(values.head);
  if (values.head !== undefined && !head) throw new UsageError('--head must be <position>:<hash> as printed by audit verify');
  // loadAuditKey would make up a fresh key when none exists; checking against it would call every record altered.
  if (!config.audit.hmacKey && !existsSync(join(config.audit.keyDir, 'hmac.key'))) {
    throw new OperatorError(`no audit key: set AUDIT_HMAC_KEY, or use the DATA_DIR whose audit/hmac.key signed the records`);
  }
  const key = loadAuditKey(config.audit);
  let code = 0;
  await withDb(config, async (db) => {
    for (const tenant of await tenantsFor(db, values.tenant)) {
      if (sub === 'seal') {
        let sealed = 0;
        let r;
        do {
          r = await sealTenant(db, key, tenant, new Date());
          sealed += r.sealed;
        } while (r.more);
        process.stdout.write(`sealed ${tenant}: ${sealed} records; chain at seal ${r.head}\n`);
      } else {
        const r = await verifyTenant(db, key, tenant, head ? { head } : {});
        process.stdout.write(`${describeResult(r)}\n`);
        if (!r.ok) code = 1;
      }
    }
  });
  return code;
}

async function keysCommand(config: Config, args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, { 'batch-size': { type: 'string' }, tenant: { type: 'string' } });
  if (positionals.length !== 1 || positionals[0] !== 'rotate') throw new UsageError('usage: carebase keys rotate [--batch-size <n>] [--tenant <id>]');
  const batchSize = values['batch-size'] === undefined ? 500 : Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new UsageError('--batch-size must be a whole number from 1 to 10000');
  checkTenantOption(values.tenant);
  const [{ loadFieldKeys }, { rotateKeys }, { createCache }] = await Promise.all([
    import('./container.js'),
    import('./features/keys/keys.rotate.js'),
    import('./platform/cache/index.js'),
  ]);
  const keys = loadFieldKeys(config.encryption);
  let ok = false;
  await withDb(config, async (db, log) => {
    const tenants = await tenantsFor(db, values.tenant);
    // With Redis, the entries of rewritten patients are dropped (the in-process cache dies with its server).
    const cache = config.redisUrl ? createCache({ redisUrl: config.redisUrl, log, maxEntries: config.cache.maxEntries }) : undefined;
    await cache?.ping(2000).catch((err: unknown) => log.warn({ err }, 'cache not reachable: cached entries of rewritten patients expire after CACHE_TTL_SECONDS'));
    try {
      const summary = await rotateKeys(db, keys, tenants, {
        batchSize,
        ...(cache ? { cache } : {}),
        // Progress on stderr: stdout is the JSON summary alone, for scripts.
        onBatch: (p) => process.stderr.write(`${p.target}: ${p.scanned} scanned, ${p.rotated} rotated, ${p.conflicts} conflicts, ${p.failed} failed\n`),
      });
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      ok = summary.ok;
      if (!ok) process.stderr.write('carebase: not every value is under the primary key yet (see failed, conflicts, complete); keep the old keys and run again\n');
    } finally {
      await cache?.close();
    }
  });
  return ok ? 0 : 1;
}

async function serve(config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const errorTracking = await startErrorTracking(config, log);
  const [{ buildApp }, { createDeps }, { migrate }, { seedDemo }, { startJobWorker }] = await Promise.all([
    import('./app.js'),
    import('./container.js'),
    import('./platform/db/migrate.js'),
    import('./features/demo/demo.seed.js'),
    import('./jobs/worker.js'),
  ]);
  const deps = await createDeps(config, log).catch(asOperatorError);
  try {
    if (config.migrateOnStart) {
      const r = await deps.db.withOwner((s) => migrate(s));
      log.info({ applied: r.applied, schemaVersion: r.current }, 'database migrated');
    }
    if (config.seedDemo) {
      const r = await seedDemo(deps.db, log, deps.audit, deps.keys);
      if (r.seeded) log.info({ tenant: DEMO_TENANT, locations: r.locations, providers: r.providers, patients: r.patients }, 'demo data seeded');
    }
  } catch (err) {
    await deps.close();
    throw err;
  }
  const app = await buildApp(deps);
  await app.listen({ port: config.port, host: config.host });
  const metricsServer = await startMetricsPort(config, deps.metrics.registry);
  if (config.jobs.inServe) startJobWorker(deps);

  onShutdown(config, log, errorTracking, 'shutting down: no new connections; finishing requests and jobs in flight', async () => {
    metricsServer?.close();
    await app.close();
    // Jobs in progress finish before the database goes (Deps.close closes the queue first).
    await deps.close();
  });

  if (config.auth.kind === 'dev') printBanner(config, app.server.address());
  return -1; // keep running
}

/**
 * `carebase worker`: runs jobs and nothing else (no API listener; /metrics on METRICS_PORT when
 * set). It does not migrate: it waits for the schema that `carebase migrate` or `serve` applies.
 */
async function worker(config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const errorTracking = await startErrorTracking(config, log);
  const [{ createDeps }, { startJobWorker }, { waitForSchema }, { createDb }] = await Promise.all([
    import('./container.js'),
    import('./jobs/worker.js'),
    import('./platform/db/schema-ready.js'),
    import('./platform/db/index.js'),
  ]);
  // Nothing starts (outbox dispatcher, jobs) before the schema is this code's. An embedded
  // database opens in one process only: nobody else can migrate it meanwhile, so no waiting there.
  const probe = await createDb(config.database).catch(asOperatorError);
  // A stop while waiting is a clean one: nothing runs yet.
  const stopWaiting = () => log.flush(() => process.exit(0));
  process.once('SIGTERM', stopWaiting).once('SIGINT', stopWaiting);
  try {
    await waitForSchema(probe, log, config.database.kind === 'pglite' ? 0 : config.jobs.schemaWaitMs);
  } catch (err) {
    throw err instanceof Error && err.name === 'SchemaNotReady' ? new OperatorError(err.message) : err;
  } finally {
    process.off('SIGTERM', stopWaiting).off('SIGINT', stopWaiting);
    await probe.close();
  }
  const deps = await createDeps(config, log).catch(asOperatorError);
  if (!config.redisUrl) log.warn('worker without REDIS_URL: it runs its own schedules only; jobs enqueued by other processes run in those processes');
  const metricsServer = await startMetricsPort(config, deps.metrics.registry);
  startJobWorker(deps);
  onShutdown(config, log, errorTracking, 'shutting down: no new jobs; finishing the running ones', async () => {
    metricsServer?.close();
    await deps.close();
  });
  return -1; // keep running
}

/** Error tracking (SENTRY_DSN) first: from here on, failed requests (500) and crashes are reported. */
async function startErrorTracking(config: Config, log: Logger) {
  return config.errorTracking ? import('./platform/error-tracking/sentry.js').then((m) => m.startErrorTracking(config.errorTracking!, log)) : undefined;
}

async function startMetricsPort(config: Config, registry: import('prom-client').Registry) {
  if (!config.metrics.port) return undefined;
  const { startMetricsServer } = await import('./http/metrics-server.js');
  return startMetricsServer(registry, config.metrics.port, config.host, config.metrics.token);
}

/**
 * On SIGTERM/SIGINT: close() (finish what is in flight), then export buffered spans and send
 * queued error reports, then exit 0 — or 1 when close() failed or SHUTDOWN_TIMEOUT_MS ran out.
 */
function onShutdown(config: Config, log: Logger, errorTracking: { close(): Promise<unknown> } | undefined, message: string, close: () => Promise<void>): void {
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, message);
    const force = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    close()
      // Spans still buffered are exported and error reports still queued are sent, together, for at
      // most 2 s, whether or not the close went well.
      .finally(() => Promise.all([shutdownTracing(2000), errorTracking?.close()]))
      .then(
        () => {
          log.info('shutdown complete');
          log.flush(() => process.exit(0));
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          log.flush(() => process.exit(1));
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

function printBanner(config: Config, address: ReturnType<import('node:net').Server['address']>): void {
  const port = typeof address === 'object' && address ? address.port : config.port;
  const base = `http://localhost:${port}`;
  process.stdout.write(
    [
      '',
      `Carebase is running at ${base}  (docs: ${base}/docs)`,
      `Get a token from the development issuer (tenant "${DEMO_TENANT}" holds demo data):`,
      `  TOKEN=$(npm run -s cli -- token --tenant ${DEMO_TENANT} --role clinician --sub alice)`,
      `  curl -H "Authorization: Bearer $TOKEN" ${base}/v1/patients`,
      `Roles: ${ROLES.join(', ')} (the patient role also needs --patient-id <uuid>).`,
      '',
    ].join('\n'),
  );
}

/** A database that is locked by another process is the operator's to fix: say so plainly. */
function asOperatorError(err: unknown): never {
  if (err instanceof Error && err.name === 'DataDirInUseError') throw new OperatorError(err.message);
  throw err;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`carebase: ${err.message}\nRun "carebase --help" for usage.\n`);
      process.exit(2);
    }
    if (err instanceof MigrationError || err instanceof OperatorError) {
      process.stderr.write(`carebase: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`carebase: failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
