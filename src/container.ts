// Builds the adapters once, from the config, and hands them down. close() shuts them in reverse.
import { createLocalJWKSet, createRemoteJWKSet } from 'jose';
import { loadDevIssuer, type DevIssuer } from './auth/dev-issuer.js';
import { createVerifier, type Verifier } from './auth/verifier.js';
import type { Config } from './config.js';
import type { FieldKeys } from './context.js';
import { createTenantDirectory, type TenantDirectory } from './features/tenants/tenants.service.js';
import { createResourceCache, type ResourceCache } from './features/shared/resource-cache.js';
import { loadAuditKey } from './features/audit/audit-key.js';
import { createAuditor, type Auditor } from './features/audit/auditor.js';
import { startDispatcher } from './features/events/dispatcher.js';
import { createMemoryEventBus, createRedisEventBus } from './features/events/event-bus.js';
import { createEventLog } from './features/events/event-log.js';
import { createHealthMonitor, type HealthMonitor } from './features/health/health-monitor.js';
import { circuitPost } from './features/health/alert-webhook.js';
import { createCircuits, registerCircuitMetrics, type CircuitRegistry } from './platform/circuit/index.js';
import { createPerformanceWindow, type PerformanceWindow } from './features/performance/performance-window.js';
import type { EventBus, EventLog } from './features/events/events.js';
import { createCache, type Cache } from './platform/cache/index.js';
import { loadKeyRing } from './platform/crypto/index.js';
import { createDb } from './platform/db/index.js';
import { instrumentDb } from './platform/metrics/instrumented-db.js';
import { createMetrics, type Metrics } from './platform/metrics/metrics.js';
import { JOBS } from './jobs/registry.js';
import { createJobQueue, jobQueuePrefix, type JobQueue } from './platform/jobs/index.js';
import { createJobMetrics } from './platform/jobs/job-metrics.js';
import type { Db } from './platform/db/db.js';
import type { Logger } from './platform/log.js';
import { createPostgresDb } from './platform/db/postgres.js';
import { createReplicaSet, type ReplicaSet } from './platform/db/replicas.js';
import { deploymentName } from './platform/deployment-scope.js';

export interface Deps {
  readonly config: Config;
  readonly log: Logger;
  readonly db: Db;
  /** Read replicas (DATABASE_READ_URLS), when configured: where list pages are read (http/replica-reads.ts). */
  readonly replicas?: ReplicaSet;
  readonly tenants: TenantDirectory;
  /** Redis in server mode, in-process otherwise; never the source of truth. */
  readonly cache: Cache;
  readonly resources: ResourceCache;
  readonly verify: Verifier;
  readonly audit: Auditor;
  /** Dispatched events: live (bus, every instance) and retained (log, for resuming clients). */
  readonly events: { readonly bus: EventBus; readonly log: EventLog };
  /** Field encryption (patients' sensitive identifiers, idempotency records). */
  readonly keys: FieldKeys;
  /** Present when tokens come from the built-in development issuer. */
  readonly devIssuer?: DevIssuer;
  readonly now: () => Date;
  /** PostgreSQL and Redis, checked in the background; changes are alerted (ALERT_WEBHOOK_URL). */
  readonly health: HealthMonitor;
  /** Circuit breakers of the external calls, one per upstream (state shared through Redis in server mode). */
  readonly circuits: CircuitRegistry;
  /** This instance's recent requests by route, for GET /v1/admin/performance. */
  readonly performance: PerformanceWindow;
  /** This instance's Prometheus registry and the metrics the code updates directly. */
  readonly metrics: Metrics;
  /** Background jobs: BullMQ in server mode, in-process otherwise; src/jobs/worker.ts runs them. */
  readonly jobs: JobQueue;
  close(): Promise<void>;
}

/** The key ring of ENCRYPTION_KEYS (or the development ring in DATA_DIR/keys) and the systems it covers. */
export function loadFieldKeys(c: Config['encryption']): FieldKeys {
  return Object.freeze({ ...loadKeyRing(c), identifierSystems: Object.freeze([...c.identifierSystems]) });
}

export async function createDeps(config: Config, log: Logger): Promise<Deps> {
  // First, before any connection: an unreadable development key file stops the start here
  // (weak, malformed or missing keys in the environment were already refused by loadConfig).
  const keys = loadFieldKeys(config.encryption);
  const metrics = createMetrics();
  const db = instrumentDb(await createDb(config.database, (err) => log.warn({ err }, 'database pool: idle client error')), metrics);
  let replicas: ReplicaSet | undefined;
  try {
    const pgConfig = config.database;
    if (pgConfig.kind === 'postgres' && pgConfig.replicas) {
      const onPoolError = (err: Error) => log.warn({ err }, 'database replica pool: idle client error');
      const dbs = await Promise.all(pgConfig.replicas.urls.map(async (url) => instrumentDb(await createPostgresDb({ ...pgConfig, url, onPoolError }), metrics)));
      replicas = await createReplicaSet(db, dbs, { maxLagSeconds: pgConfig.replicas.maxLagSeconds, checkTimeoutMs: pgConfig.connectTimeoutMs });
      const states = replicas.states.bind(replicas);
      metrics.gauge('db_replicas_usable', 'Read replicas answering within the lag limit (list pages are read from them)', () => states().filter((r) => r.usable).length);
      metrics.gauge('db_replica_lag_seconds_max', 'The largest replication lag among the read replicas at their last check', () => Math.max(0, ...states().map((r) => r.lagSeconds ?? 0)));
      const unusable = states().filter((r) => !r.usable);
      if (unusable.length > 0) log.warn({ replicas: unusable }, 'database replicas not read from until they answer within the lag limit');
    }
    const a = config.auth;
    const devIssuer = a.kind === 'dev' ? await loadDevIssuer(a.keyDir, a.issuer, a.audience) : undefined;
    const jwks = devIssuer ? createLocalJWKSet(devIssuer.publicJwks) : createRemoteJWKSet(new URL((a as { jwksUrl: string }).jwksUrl));
    const verify = createVerifier({ jwks, issuer: a.issuer, audience: a.audience, algorithms: a.algorithms });
    const cache = createCache({ redisUrl: config.redisUrl, log, maxEntries: config.cache.maxEntries });
    // Give Redis a moment to connect so the first requests use it; an unreachable cache is not
    // fatal (reads go to PostgreSQL), so this only logs.
    await cache.ping(2000).catch((err: unknown) => log.warn({ err }, 'cache not reachable at start; serving from the database until it is'));
    const audit = createAuditor({ db, key: loadAuditKey(config.audit), log, mode: config.audit.reads, flushMs: config.audit.flushMs });
    const d = config.database;
    // Instances of one deployment share the events channel: the database they write to names it.
    const bus = config.redisUrl ? createRedisEventBus({ url: config.redisUrl, log, scope: deploymentName(d) }) : createMemoryEventBus(log);
    const stopDispatcher = startDispatcher(db, bus, log, {
      intervalMs: config.events.dispatchIntervalMs,
      retentionMs: config.events.retentionMs,
      onPass: (events) => {
        const now = Date.now();
        metrics.outboxLag.set(events.reduce((lag, e) => Math.max(lag, (now - Date.parse(e.occurredAt)) / 1000), 0));
        metrics.eventsDispatched.inc(events.length);
      },
    });
    registerSourceMetrics(metrics, db, cache, audit);
    const jobMetrics = createJobMetrics(metrics);
    const jobs = await createJobQueue({
      catalog: JOBS,
      log,
      redisUrl: config.redisUrl,
      prefix: config.jobs.prefix ?? jobQueuePrefix(d),
      attempts: config.jobs.attempts,
      backoffMs: config.jobs.backoffMs,
      failedRetention: { maxAgeMs: config.jobs.failedRetentionMs, maxCount: 10_000 },
      observe: jobMetrics.observe,
    });
    jobMetrics.watch(jobs);
    const performance = createPerformanceWindow({ cacheStats: () => cache.stats(), ...(db.poolStats ? { poolStats: db.poolStats.bind(db) } : {}) });
    // PGlite has no pool to sample.
    const poolSampler = db.poolStats ? setInterval(() => performance.samplePool(), 1000) : undefined;
    poolSampler?.unref();
    // External calls go through circuit breakers; instances of one deployment (the database they
    // use names it, as for the events channel) share their state through Redis.
    const { scope, operatorTenants: _operators, ...policy } = config.circuits;
    const circuits = createCircuits({
      log,
      ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
      scope: scope ?? deploymentName(d),
      policy: { ...policy, retryMaxDelayMs: Math.max(5000, policy.retryDelayMs) },
    });
    registerCircuitMetrics(metrics, circuits);
    const health = createHealthMonitor({
      checks: [
        { name: 'postgresql', required: true, run: () => db.ping(2000) },
        ...(replicas?.states() ?? []).map((r) => ({ name: r.name, required: false, run: () => replicas!.check(r.name, 2000) })),
        ...(config.redisUrl ? [{ name: 'redis', required: false, run: () => cache.ping(2000) }] : []),
        { name: 'jobs', required: false, run: () => jobs.ping(2000) },
      ],
      log,
      intervalMs: config.health.intervalMs,
      ...(config.health.webhookUrl ? { webhookUrl: config.health.webhookUrl, post: circuitPost(circuits.define('alert-webhook')) } : {}),
    });
    metrics.cumulative('health_alerts_dropped_total', 'Dependency alerts not delivered to ALERT_WEBHOOK_URL (webhook failing, or its circuit open)', () => health.stats().alertsDropped);
    return {
      config,
      log,
      db,
      ...(replicas ? { replicas } : {}),
      audit,
      events: { bus, log: createEventLog(db) },
      keys,
      tenants: createTenantDirectory(db),
      cache,
      resources: createResourceCache(cache, config.cache.ttlSeconds),
      verify,
      ...(devIssuer ? { devIssuer } : {}),
      now: () => new Date(),
      metrics,
      health,
      circuits,
      performance,
      jobs,
      async close() {
        clearInterval(poolSampler);
        // Running jobs finish first: they use everything below.
        await jobs.close();
        // Upstream calls in flight (an alert being posted) end now instead of running out their timeouts.
        const closingCircuits = circuits.close();
        await health.close();
        await closingCircuits;
        // Pending read audits and committed events are written and dispatched before the database goes.
        await stopDispatcher();
        await audit.close();
        await bus.close();
        await cache.close();
        await replicas?.close();
        await db.close();
      },
    };
  } catch (err) {
    await replicas?.close();
    await db.close();
    throw err;
  }
}

/** Metrics read from the adapters' own counters when Prometheus scrapes. */
function registerSourceMetrics(m: Metrics, db: Db, cache: Cache, audit: Auditor): void {
  m.cumulative('cache_hits_total', 'Cache reads that found the entry', () => cache.stats().hits);
  m.cumulative('cache_misses_total', 'Cache reads that did not find the entry', () => cache.stats().misses);
  m.cumulative('cache_errors_total', 'Failed cache operations (Redis unreachable, timeouts); the request went on without the cache', () => cache.stats().errors);
  m.gauge('audit_records_pending', 'Read audit records waiting for their batched insert', () => audit.stats().pending);
  m.cumulative('audit_flush_failures_total', 'Batched audit inserts that failed (retried)', () => audit.stats().failedFlushes);
  m.cumulative('audit_records_dropped_total', 'Audit records dropped because the pending bound was exceeded during a long outage', () => audit.stats().dropped);
  const pool = db.poolStats?.bind(db);
  if (pool) {
    m.gauge('db_pool_in_use', 'Pooled connections running a query or transaction', () => pool().inUse);
    m.gauge('db_pool_idle', 'Pooled connections idle', () => pool().idle);
    m.gauge('db_pool_waiting', 'Requests waiting for a pooled connection', () => pool().waiting);
  }
}
