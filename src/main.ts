// The `carebase` command: loadConfig() → createDeps() → buildApp() → listen; signals → close().
// Commands import what they use when they run, so `--help` and `token` start instantly.
import { parseArgs } from 'node:util';
import { ROLES, TENANT_ID_PATTERN, type Role } from './auth/principal.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { DEMO_TENANT } from './features/demo/demo-data.js';
import type { Db } from './platform/db/db.js';
import { MigrationError } from './platform/db/migrate.js';
import { createLogger, type Logger } from './platform/log.js';


/** Startup failures whose message is the whole story (no stack trace for the operator). */
class OperatorError extends Error {}

const HELP = `Usage: carebase <command> [options]

Commands:
  serve                      Start the API (default). Applies migrations first unless MIGRATE_ON_START=false,
                             and seeds the demo tenant on an empty database when SEED_DEMO is true.
  migrate                    Apply pending database migrations and exit.
  seed                       Seed the demo tenant (no-op when it exists).
  tenant create <id> [--name <name>]
                             Provision a tenant.
  token --tenant <t> --role <r>[,<r>...] --sub <s> [--patient-id <uuid>] [--ttl <seconds>]
                             Print a token from the development issuer (not in production).

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
        const r = await seedDemo(db, log, audit);
        process.stdout.write(r.seeded ? `Seeded tenant ${DEMO_TENANT}: ${r.locations} locations, ${r.providers} providers, ${r.patients} patients.\n` : `Tenant ${DEMO_TENANT} exists; nothing to do.\n`);
      });
    case 'tenant':
      return tenantCommand(config, rest);
    case 'token':
      return tokenCommand(config, rest);
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

async function serve(config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const [{ buildApp }, { createDeps }, { migrate }, { seedDemo }, { startKeySweeper }] = await Promise.all([
    import('./app.js'),
    import('./container.js'),
    import('./platform/db/migrate.js'),
    import('./features/demo/demo.seed.js'),
    import('./features/idempotency/sweeper.js'),
  ]);
  const deps = await createDeps(config, log).catch(asOperatorError);
  try {
    if (config.migrateOnStart) {
      const r = await deps.db.withOwner((s) => migrate(s));
      log.info({ applied: r.applied, schemaVersion: r.current }, 'database migrated');
    }
    if (config.seedDemo) {
      const r = await seedDemo(deps.db, log, deps.audit);
      if (r.seeded) log.info({ tenant: DEMO_TENANT, locations: r.locations, providers: r.providers, patients: r.patients }, 'demo data seeded');
    }
  } catch (err) {
    await deps.close();
    throw err;
  }
  const app = await buildApp(deps);
  await app.listen({ port: config.port, host: config.host });
  const stopSweeper = startKeySweeper(deps.db, log);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: no new connections; finishing requests in flight');
    const force = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    stopSweeper();
    app
      .close()
      .then(() => deps.close())
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

  if (config.auth.kind === 'dev') printBanner(config, app.server.address());
  return -1; // keep running
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
