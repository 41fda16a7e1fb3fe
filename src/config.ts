// The one place that reads the environment. Everything else receives a frozen Config.
// In order: value parsers (keys, URLs, lists); `schema`, one commented section per feature; the
// Config types; then loadConfig(), which reads *_FILE secrets, validates and assembles.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TENANT_ID_PATTERN } from './auth/principal.js';
import { RATE_LIMIT_GROUPS, type GroupLimit, type RateLimitGroup } from './platform/ratelimit/groups.js';
import { parseKeyList, parseSingleKey, type EncryptionKey } from './platform/crypto/key-material.js';
import { DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS } from './platform/crypto/sensitive-identifiers.js';

const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

const bool = (fallback: boolean) => z.stringbool().optional().transform((v) => v ?? fallback);
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).optional().transform((v) => v ?? fallback);
const postgresUrl = z
  .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' })
  .optional();

/** A secret given as base64 (standard or url-safe) of at least 32 bytes. */
const secretKey = (name: string) =>
  z.string().transform((v, ctx) => {
    const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(v) ? Buffer.from(v, 'base64') : Buffer.alloc(0);
    if (bytes.length < 32) {
      ctx.addIssue({ code: 'custom', message: `${name} must be base64 of at least 32 random bytes (e.g. openssl rand -base64 32)` });
      return z.NEVER;
    }
    return bytes;
  });

/** ENCRYPTION_KEYS: "id:base64,id:base64", the first is the primary (src/platform/crypto/key-material.ts). */
const encryptionKeys = z.string().transform((v, ctx) => {
  const r = parseKeyList(v);
  if ('problem' in r) {
    ctx.addIssue({ code: 'custom', message: r.problem });
    return z.NEVER;
  }
  return r.keys;
});

/** BLIND_INDEX_KEY: base64 of exactly 32 random bytes. */
const blindIndexKey = z.string().transform((v, ctx) => {
  const r = parseSingleKey(v);
  if ('problem' in r) {
    ctx.addIssue({ code: 'custom', message: r.problem });
    return z.NEVER;
  }
  return r.key;
});

/**
 * SENTRY_DSN: http(s)://<public key>@<host>[:port][/path]/<project id>, as Sentry's SDK reads it.
 * The problem line never repeats the value (it holds the project's key).
 */
const sentryDsn = z.string().refine((v) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && /^\w+$/.test(u.username) && /^\w*$/.test(u.password) && u.hostname !== '' && /^(\/[^/]+)*\/\d+$/.test(u.pathname) && !u.search && !u.hash;
}, 'must be a Sentry DSN: http(s)://<public key>@<host>[:port]/<project id>');

/** Comma-separated postgres:// URLs (read replicas). */
const postgresUrls = z.string().transform((v, ctx) => {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.findIndex((s) => !postgresUrl.safeParse(s).success);
  if (list.length === 0 || bad >= 0) {
    ctx.addIssue({ code: 'custom', message: list.length === 0 ? 'must list at least one postgres:// URL' : `entry ${bad + 1} is not a postgres:// or postgresql:// URL` });
    return z.NEVER;
  }
  return list;
});

/** A comma-separated list of identifier system URIs; replaces the default list. */
const identifierSystems = z.string().transform((v, ctx) => {
  const list = [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))];
  const bad = list.findIndex((s) => !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(s));
  if (list.length === 0 || bad >= 0) {
    ctx.addIssue({ code: 'custom', message: list.length === 0 ? 'must list at least one system URI' : `entry ${bad + 1} is not an absolute URI` });
    return z.NEVER;
  }
  return list;
});

/**
 * `key=value,key=value` with percent-encoded values (W3C baggage style), as OTEL_EXPORTER_OTLP_HEADERS
 * and OTEL_RESOURCE_ATTRIBUTES spell them.
 */
const keyValueList = (name: string, key: RegExp) =>
  z.string().transform((v, ctx) => {
    const out: Record<string, string> = {};
    for (const [i, entry] of v.split(',').map((s) => s.trim()).filter(Boolean).entries()) {
      const eq = entry.indexOf('=');
      const k = eq > 0 ? entry.slice(0, eq).trim() : '';
      let value: string | undefined;
      try {
        value = eq > 0 ? decodeURIComponent(entry.slice(eq + 1).trim()) : undefined;
      } catch {
        value = undefined;
      }
      // The entry itself is not quoted: OTEL_EXPORTER_OTLP_HEADERS usually holds an API key.
      if (!key.test(k) || value === undefined) {
        ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not key=value (${name} is a comma-separated list of key=value with percent-encoded values)` });
        return z.NEVER;
      }
      out[k] = value;
    }
    return out;
  });

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: int(8080, 0, 65535),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: postgresUrl,
    DATABASE_READ_URLS: postgresUrls.optional(),
    DATABASE_READ_MAX_LAG_SECONDS: int(10, 1, 3600),
    DATABASE_READ_AFTER_WRITE_SECONDS: int(10, 1, 3600),
    DATABASE_POOL_SIZE: int(10, 1, 500),
    DATABASE_CONNECT_TIMEOUT_MS: int(5000, 100, 120_000),
    DATABASE_STATEMENT_TIMEOUT_MS: int(15_000, 100, 600_000),
    REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
    CACHE_TTL_SECONDS: int(300, 1, 7 * 86400),
    CACHE_MAX_ENTRIES: int(10_000, 100, 10_000_000),
    MIGRATE_ON_START: bool(true),
    SEED_DEMO: z.stringbool().optional(),
    AUTH_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    AUTH_ISSUER: z.string().min(1).optional(),
    AUTH_AUDIENCE: z.string().min(1).optional(),
    AUTH_ALGORITHMS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const list = (v ?? ALGORITHMS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
        const bad = list.filter((a) => !(ALGORITHMS as readonly string[]).includes(a));
        if (bad.length > 0 || list.length === 0) {
          ctx.addIssue({ code: 'custom', message: `allowed values are ${ALGORITHMS.join(', ')} (got ${bad.join(', ') || 'none'})` });
          return z.NEVER;
        }
        return list as (typeof ALGORITHMS)[number][];
      }),
    BODY_LIMIT_BYTES: int(1024 * 1024, 1024, 100 * 1024 * 1024),
    SHUTDOWN_TIMEOUT_MS: int(10_000, 1000, 120_000),
    AUDIT_HMAC_KEY: secretKey('AUDIT_HMAC_KEY').optional(),
    AUDIT_READS: z.enum(['batched', 'sync']).default('batched'),
    AUDIT_FLUSH_MS: int(1000, 10, 1000),
    ENCRYPTION_KEYS: encryptionKeys.optional(),
    BLIND_INDEX_KEY: blindIndexKey.optional(),
    ENCRYPTED_IDENTIFIER_SYSTEMS: identifierSystems.optional(),
    // Prometheus: /metrics needs `Authorization: Bearer <METRICS_TOKEN>` when set; with
    // METRICS_PORT it is served on that port (e.g. bound to an internal network) instead of the API's.
    METRICS_TOKEN: z.string().min(24, 'must be at least 24 characters').optional(),
    METRICS_PORT: int(0, 1, 65535).optional(),
    // Rate limits per route group: points per window (seconds), per tenant + user, or per client IP
    // when anonymous (src/http/rate-limit.ts).
    RATE_LIMIT_READ_POINTS: int(3000, 1, 1_000_000_000),
    RATE_LIMIT_READ_DURATION: int(60, 1, 86_400),
    RATE_LIMIT_WRITE_POINTS: int(600, 1, 1_000_000_000),
    RATE_LIMIT_WRITE_DURATION: int(60, 1, 86_400),
    RATE_LIMIT_AUTH_POINTS: int(20, 1, 1_000_000_000),
    RATE_LIMIT_AUTH_DURATION: int(60, 1, 86_400),
    RATE_LIMIT_EXPORT_POINTS: int(10, 1, 1_000_000_000),
    RATE_LIMIT_EXPORT_DURATION: int(60, 1, 86_400),
    RATE_LIMIT_SYNC_POINTS: int(10, 1, 1_000_000_000),
    RATE_LIMIT_SYNC_DURATION: int(60, 1, 86_400),
    RATE_LIMIT_REALTIME_POINTS: int(30, 1, 1_000_000_000),
    RATE_LIMIT_REALTIME_DURATION: int(60, 1, 86_400),
    // Which proxies to trust for the client IP (X-Forwarded-For): unset/false: none; true: all;
    // a number: that many hops; otherwise a comma-separated list of addresses or CIDRs.
    TRUST_PROXY: z
      .string()
      .transform((v) => (v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v.split(',').map((s) => s.trim()).filter(Boolean)))
      .optional(),
    // Edge protections (src/http/security.ts).
    CORS_ORIGINS: z
      .string()
      .transform((v, ctx) => {
        const list = v.split(',').map((s) => s.trim()).filter(Boolean);
        const bad = list.filter((o) => o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o));
        if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `origins are scheme://host[:port] without a path (got ${bad.join(', ')})` });
        if (list.includes('*') && list.length > 1) ctx.addIssue({ code: 'custom', message: '* allows every origin (without credentials); it cannot be combined with a list' });
        return list;
      })
      .optional(),
    JSON_MAX_DEPTH: int(64, 8, 1000),
    REQUEST_TIMEOUT_MS: int(30_000, 100, 600_000),
    REQUIRE_HTTPS: bool(false),
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    // Dependency health (src/features/health): checked this often; changes POSTed to the webhook.
    HEALTH_CHECK_INTERVAL_MS: int(15_000, 100, 600_000),
    ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    // Circuit breakers around external calls (src/platform/circuit): one policy for every upstream.
    CIRCUIT_FAILURE_THRESHOLD: int(5, 1, 1000),
    CIRCUIT_HALF_OPEN_AFTER_MS: int(30_000, 100, 3_600_000),
    CIRCUIT_TIMEOUT_MS: int(5000, 50, 120_000),
    CIRCUIT_RETRIES: int(2, 0, 10),
    CIRCUIT_RETRY_DELAY_MS: int(200, 1, 60_000),
    CIRCUIT_SCOPE: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'must be 1–200 printable characters without spaces').optional(),
    // Circuits belong to the deployment: only the admins of these tenants may force them.
    CIRCUIT_OPERATOR_TENANTS: z
      .string()
      .transform((v, ctx) => {
        const list = [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))];
        const bad = list.filter((t) => !TENANT_ID_PATTERN.test(t));
        if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `not tenant ids (lower-case letters, digits, dashes): ${bad.join(', ')}` });
        return list;
      })
      .optional(),
    // Error tracking (src/platform/error-tracking): Sentry when SENTRY_DSN is set, with PHI scrubbed.
    SENTRY_DSN: sentryDsn.optional(),
    SENTRY_ENVIRONMENT: z.string().regex(/^[^\s/\\]{1,64}$/, 'must be 1–64 characters without spaces or slashes').optional(),
    SENTRY_RELEASE: z.string().regex(/^(?!\.\.?$)[^\s/\\]{1,200}$/, 'must be 1–200 characters without spaces or slashes').optional(),
    SENTRY_SAMPLE_RATE: z.coerce.number().min(0).max(1).optional().transform((v) => v ?? 1),
    EVENTS_RETENTION_HOURS: int(24, 1, 24 * 90),
    EVENTS_DISPATCH_INTERVAL_MS: int(25, 5, 10_000),
    // Jobs (src/platform/jobs, src/jobs): BullMQ with REDIS_URL, in-process without.
    JOBS_CONCURRENCY: int(4, 1, 100),
    JOBS_IN_SERVE: bool(true),
    JOBS_ATTEMPTS: int(5, 1, 100),
    JOBS_BACKOFF_MS: int(1000, 10, 3_600_000),
    JOBS_FAILED_RETENTION_DAYS: int(7, 1, 365),
    JOBS_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]{1,100}$/, 'must be 1–100 letters, digits, ":", "_", "." or "-"').optional(),
    JOBS_SCHEMA_WAIT_MS: int(60_000, 0, 3_600_000),
    AUDIT_SEAL_INTERVAL_MS: int(5000, 100, 3_600_000),
    IDEMPOTENCY_SWEEP_INTERVAL_MS: int(600_000, 100, 86_400_000),
    // Real time (src/http/realtime): SSE and WebSocket delivery, tickets, rooms.
    ROOM_MAX_MEMBERS: int(50, 1, 1000),
    REALTIME_HEARTBEAT_MS: int(15_000, 50, 300_000),
    REALTIME_RECONNECT_MS: int(2000, 10, 60_000),
    REALTIME_MAX_BUFFER_BYTES: int(1024 * 1024, 1024, 256 * 1024 * 1024),
    REALTIME_TICKET_TTL_SECONDS: int(30, 1, 300),
    REALTIME_REPLAY_PAGE_SIZE: int(500, 10, 10_000),
    // OpenTelemetry tracing (src/platform/tracing), the standard variables: on when the endpoint is set.
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL (the OTLP/HTTP receiver, e.g. http://collector:4318)' }).optional(),
    OTEL_EXPORTER_OTLP_HEADERS: keyValueList('OTEL_EXPORTER_OTLP_HEADERS', /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/).optional(),
    OTEL_SERVICE_NAME: z.string().min(1).max(255).optional(),
    OTEL_RESOURCE_ATTRIBUTES: keyValueList('OTEL_RESOURCE_ATTRIBUTES', /^[A-Za-z0-9._-]+$/).optional(),
    OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional().transform((v) => v ?? 1),
    OTEL_SDK_DISABLED: bool(false),
  })
  .superRefine((c, ctx) => {
    if (c.NODE_ENV === 'production' && !c.AUDIT_HMAC_KEY) {
      ctx.addIssue({ code: 'custom', path: ['AUDIT_HMAC_KEY'], message: 'is required when NODE_ENV=production (base64 of at least 32 random bytes, kept outside the database)' });
    }
    // Field encryption keys come as a pair: outside production both unset means a development
    // ring generated in DATA_DIR/keys; one without the other is a mistake, not a fallback.
    const requireKey = (name: 'ENCRYPTION_KEYS' | 'BLIND_INDEX_KEY', other: 'ENCRYPTION_KEYS' | 'BLIND_INDEX_KEY', hint: string) => {
      if (c[name] !== undefined || (c.NODE_ENV !== 'production' && c[other] === undefined)) return;
      const when = c.NODE_ENV === 'production' ? 'NODE_ENV=production' : `${other} is set`;
      ctx.addIssue({ code: 'custom', path: [name], message: `is required when ${when} (${hint})` });
    };
    requireKey('ENCRYPTION_KEYS', 'BLIND_INDEX_KEY', 'id:key pairs such as k1:<base64 of 32 random bytes>, the first is the primary; kept outside the database');
    requireKey('BLIND_INDEX_KEY', 'ENCRYPTION_KEYS', 'base64 of 32 random bytes kept outside the database; never changed once data is indexed');
    if (Array.isArray(c.ENCRYPTION_KEYS) && Buffer.isBuffer(c.BLIND_INDEX_KEY) && c.ENCRYPTION_KEYS.some((k) => k.key.equals(c.BLIND_INDEX_KEY!))) {
      ctx.addIssue({ code: 'custom', path: ['BLIND_INDEX_KEY'], message: 'must not be one of the ENCRYPTION_KEYS keys (each key has one purpose)' });
    }
    // Without Redis a job runs in the process that enqueued it: serve must run them.
    if (c.JOBS_IN_SERVE === false && !c.REDIS_URL) {
      ctx.addIssue({ code: 'custom', path: ['JOBS_IN_SERVE'], message: 'false needs REDIS_URL (without Redis, jobs run in the process that enqueues them, so serve must run them)' });
    }
    if (c.DATABASE_READ_URLS && !c.DATABASE_URL) ctx.addIssue({ code: 'custom', path: ['DATABASE_READ_URLS'], message: 'needs DATABASE_URL (replicas of a PostgreSQL primary)' });
    if (c.AUTH_JWKS_URL) {
      if (!c.AUTH_ISSUER) ctx.addIssue({ code: 'custom', path: ['AUTH_ISSUER'], message: 'is required when AUTH_JWKS_URL is set' });
      if (!c.AUTH_AUDIENCE) ctx.addIssue({ code: 'custom', path: ['AUTH_AUDIENCE'], message: 'is required when AUTH_JWKS_URL is set' });
    } else if (c.NODE_ENV === 'production') {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_JWKS_URL'],
        message: 'is required when NODE_ENV=production (the development token issuer is refused in production)',
      });
    }
    // Run even when other variables are invalid, so every problem is reported at once.
  }, { when: (p) => typeof p.value === 'object' && p.value !== null });

export type Algorithm = (typeof ALGORITHMS)[number];

export interface Config {
  readonly env: 'development' | 'test' | 'production';
  readonly port: number;
  readonly host: string;
  readonly logLevel: string;
  readonly dataDir: string;
  readonly database:
    | { readonly kind: 'pglite'; readonly dataDir: string }
    | {
        readonly kind: 'postgres';
        readonly url: string;
        readonly poolSize: number;
        readonly connectTimeoutMs: number;
        readonly statementTimeoutMs: number;
        /** Read replicas (DATABASE_READ_URLS): list reads go to them (see platform/db/replicas.ts). */
        readonly replicas?: {
          readonly urls: readonly string[];
          /** A replica further behind the primary than this is not read from. */
          readonly maxLagSeconds: number;
          /** A user who wrote reads from the primary for this long (read-your-writes). */
          readonly afterWriteSeconds: number;
        };
      };
  /** Unset: in-process cache. */
  readonly redisUrl?: string;
  readonly cache: { readonly ttlSeconds: number; readonly maxEntries: number };
  readonly migrateOnStart: boolean;
  readonly seedDemo: boolean;
  readonly auth:
    | { readonly kind: 'jwks'; readonly jwksUrl: string; readonly issuer: string; readonly audience: string; readonly algorithms: readonly Algorithm[] }
    | { readonly kind: 'dev'; readonly keyDir: string; readonly issuer: string; readonly audience: string; readonly algorithms: readonly Algorithm[] };
  readonly bodyLimitBytes: number;
  readonly realtime: RealtimeConfig;
  readonly shutdownTimeoutMs: number;
  readonly audit: {
    /** HMAC key of audit records; unset outside production: a key generated in DATA_DIR/audit. */
    readonly hmacKey?: Buffer;
    readonly keyDir: string;
    /** 'batched': read audits are written in batches at most flushMs apart; 'sync': each before its response. */
    readonly reads: 'batched' | 'sync';
    readonly flushMs: number;
  };
  readonly encryption: {
    /** Key-encryption keys, the first is the primary. Unset (with blindIndexKey) outside production: a ring generated in keyDir. */
    readonly keys?: readonly EncryptionKey[];
    /** HMAC key of blind indexes; independent of the encryption keys so rotating them leaves searches intact. */
    readonly blindIndexKey?: Buffer;
    readonly keyDir: string;
    /** Patient identifier systems whose values are encrypted (exact URIs). */
    readonly identifierSystems: readonly string[];
  };
  readonly metrics: { readonly token?: string; readonly port?: number };
  readonly health: { readonly intervalMs: number; readonly webhookUrl?: string };
  readonly circuits: CircuitsConfig;
  /** Error tracking (Sentry); present when SENTRY_DSN is set. */
  readonly errorTracking?: ErrorTrackingConfig;
  readonly rateLimits: Readonly<Record<RateLimitGroup, GroupLimit>>;
  readonly security: {
    readonly corsOrigins: readonly string[];
    readonly jsonMaxDepth: number;
    readonly requestTimeoutMs: number;
    readonly requireHttps: boolean;
    /** Reached over HTTPS (own TLS, or REQUIRE_HTTPS behind a proxy): HSTS is sent. */
    readonly https: boolean;
  };
  /** Serve HTTPS directly with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Fastify's trustProxy: which proxies' X-Forwarded-For to believe for the client IP. */
  readonly trustProxy: boolean | number | readonly string[];
  /** OpenTelemetry tracing; present when OTEL_EXPORTER_OTLP_ENDPOINT is set (and OTEL_SDK_DISABLED is not true). */
  readonly tracing?: TracingConfig;
  readonly events: {
    /** How long dispatched events stay replayable (a resume from before that: resync-required). */
    readonly retentionMs: number;
    /** Pause between dispatcher passes when the outbox was empty (the lag of an event at rest). */
    readonly dispatchIntervalMs: number;
  };
  readonly jobs: JobsConfig;
}

export interface JobsConfig {
  /** Jobs one worker runs at a time. */
  readonly concurrency: number;
  /** `carebase serve` runs a worker too (false: only `carebase worker` processes run jobs; needs Redis). */
  readonly inServe: boolean;
  /** Runs per job, the first included (scheduled jobs run once: the next run is their retry). */
  readonly attempts: number;
  /** Exponential backoff base: retry n waits backoffMs · 2^(n-1). */
  readonly backoffMs: number;
  readonly failedRetentionMs: number;
  /** BullMQ key prefix; unset: derived from the database (src/platform/jobs/index.ts). */
  readonly prefix?: string;
  /** How long `carebase worker` waits for the database to be migrated before giving up. */
  readonly schemaWaitMs: number;
  readonly schedules: { readonly auditSealMs: number; readonly idempotencySweepMs: number };
}

export interface CircuitsConfig {
  /** Consecutive failed attempts that open a circuit. */
  readonly failureThreshold: number;
  /** How long an open circuit refuses calls before a trial call. */
  readonly halfOpenAfterMs: number;
  /** Deadline of one attempt. */
  readonly timeoutMs: number;
  /** Retries of a transient failure (exponential backoff from retryDelayMs). */
  readonly retries: number;
  readonly retryDelayMs: number;
  /** Instances with the same scope share circuit state in Redis; unset: those using the same database. */
  readonly scope?: string;
  /** Tenants whose admins operate the deployment and may force circuits open (empty: nobody may). */
  readonly operatorTenants: readonly string[];
}

export interface ErrorTrackingConfig {
  readonly dsn: string;
  /** SENTRY_ENVIRONMENT, else NODE_ENV. */
  readonly environment: string;
  /** SENTRY_RELEASE, else carebase@<package.json version>. */
  readonly release: string;
  /** Share of error events sent, 0..1. */
  readonly sampleRate: number;
}

export interface RealtimeConfig {
  /** Members a room holds at most (a join beyond is refused with 409 CONFLICT). */
  readonly roomMaxMembers: number;
  /** SSE comment lines and WebSocket pings; presence entries expire after three missed beats. */
  readonly heartbeatMs: number;
  /** Base reconnect delay clients are told (SSE `retry:`, shutdown close reasons); jittered up to twice that. */
  readonly reconnectMs: number;
  /** Bytes a connection may have queued and unsent before it is closed as a slow consumer. */
  readonly maxBufferBytes: number;
  /** Lifetime of a single-use connection ticket (POST /v1/realtime/tickets). */
  readonly ticketTtlSeconds: number;
  /** Events read per query when replaying after a reconnect (bounds each query's cost). */
  readonly replayPageSize: number;
}

export interface TracingConfig {
  /** Where spans are POSTed (OTLP/HTTP, JSON): OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  readonly tracesUrl: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /** Share of new traces recorded (a parent's decision is followed), 0..1. */
  readonly sampleRatio: number;
}

/** Thrown with one line per problem, each naming the variable. main.ts prints them and exits 2. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

export const DEV_ISSUER = 'carebase-dev';
export const DEV_AUDIENCE = 'carebase';

/** Secrets that may come from a file instead (`<NAME>_FILE`, e.g. a Docker or Kubernetes secret). */
export const FILE_SECRETS = ['DATABASE_URL', 'DATABASE_READ_URLS', 'REDIS_URL', 'AUDIT_HMAC_KEY', 'ENCRYPTION_KEYS', 'BLIND_INDEX_KEY', 'METRICS_TOKEN', 'SENTRY_DSN', 'OTEL_EXPORTER_OTLP_HEADERS'] as const;

/** `<NAME>_FILE` → `<NAME>` (the file's content without its trailing newline); problems named by variable. */
function readFileSecrets(input: Record<string, string>, problems: string[]): void {
  for (const name of FILE_SECRETS) {
    const file = input[`${name}_FILE`];
    if (file === undefined) continue;
    delete input[`${name}_FILE`];
    if (input[name] !== undefined) {
      problems.push(`${name}_FILE: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      input[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

/** This build's version (package.json): the default Sentry release. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function readTls(certFile: string | undefined, keyFile: string | undefined, problems: string[]): { cert: string; key: string } | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) {
    problems.push(`${certFile ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'}: TLS_CERT_FILE and TLS_KEY_FILE go together`);
    return undefined;
  }
  const read = (name: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return '';
    }
  };
  const cert = read('TLS_CERT_FILE', certFile);
  const key = read('TLS_KEY_FILE', keyFile);
  if (cert && !cert.includes('-----BEGIN CERTIFICATE-----')) problems.push('TLS_CERT_FILE: not a PEM certificate');
  if (key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) problems.push('TLS_KEY_FILE: not a PEM private key');
  return { cert, key };
}

/** The OTLP/HTTP signal path is appended to OTEL_EXPORTER_OTLP_ENDPOINT, as the specification says. */
function tracesUrlOf(endpoint: string): string {
  const u = new URL(endpoint);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/traces`;
  return u.toString();
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as in most twelve-factor tools.
  const input = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const problems: string[] = [];
  readFileSecrets(input, problems);
  const parsed = schema.safeParse(input);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`));
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const c = parsed.data;
  const tls = readTls(c.TLS_CERT_FILE, c.TLS_KEY_FILE, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const dataDir = c.DATA_DIR;
  const database: Config['database'] = c.DATABASE_URL
    ? {
        kind: 'postgres',
        url: c.DATABASE_URL,
        poolSize: c.DATABASE_POOL_SIZE,
        connectTimeoutMs: c.DATABASE_CONNECT_TIMEOUT_MS,
        statementTimeoutMs: c.DATABASE_STATEMENT_TIMEOUT_MS,
        ...(c.DATABASE_READ_URLS
          ? { replicas: { urls: c.DATABASE_READ_URLS, maxLagSeconds: c.DATABASE_READ_MAX_LAG_SECONDS, afterWriteSeconds: c.DATABASE_READ_AFTER_WRITE_SECONDS } }
          : {}),
      }
    : { kind: 'pglite', dataDir: `${dataDir}/pg` };
  const auth: Config['auth'] = c.AUTH_JWKS_URL
    ? { kind: 'jwks', jwksUrl: c.AUTH_JWKS_URL, issuer: c.AUTH_ISSUER!, audience: c.AUTH_AUDIENCE!, algorithms: c.AUTH_ALGORITHMS }
    : { kind: 'dev', keyDir: `${dataDir}/dev-issuer`, issuer: c.AUTH_ISSUER ?? DEV_ISSUER, audience: c.AUTH_AUDIENCE ?? DEV_AUDIENCE, algorithms: c.AUTH_ALGORITHMS };
  return Object.freeze({
    env: c.NODE_ENV,
    port: c.PORT,
    host: c.HOST,
    logLevel: c.LOG_LEVEL,
    dataDir,
    database,
    ...(c.REDIS_URL ? { redisUrl: c.REDIS_URL } : {}),
    cache: { ttlSeconds: c.CACHE_TTL_SECONDS, maxEntries: c.CACHE_MAX_ENTRIES },
    migrateOnStart: c.MIGRATE_ON_START,
    seedDemo: c.SEED_DEMO ?? database.kind === 'pglite',
    auth,
    bodyLimitBytes: c.BODY_LIMIT_BYTES,
    realtime: {
      roomMaxMembers: c.ROOM_MAX_MEMBERS,
      heartbeatMs: c.REALTIME_HEARTBEAT_MS,
      reconnectMs: c.REALTIME_RECONNECT_MS,
      maxBufferBytes: c.REALTIME_MAX_BUFFER_BYTES,
      ticketTtlSeconds: c.REALTIME_TICKET_TTL_SECONDS,
      replayPageSize: c.REALTIME_REPLAY_PAGE_SIZE,
    },
    shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT_MS,
    audit: { ...(c.AUDIT_HMAC_KEY ? { hmacKey: c.AUDIT_HMAC_KEY } : {}), keyDir: `${dataDir}/audit`, reads: c.AUDIT_READS, flushMs: c.AUDIT_FLUSH_MS },
    encryption: {
      ...(c.ENCRYPTION_KEYS && c.BLIND_INDEX_KEY ? { keys: c.ENCRYPTION_KEYS, blindIndexKey: c.BLIND_INDEX_KEY } : {}),
      keyDir: `${dataDir}/keys`,
      identifierSystems: c.ENCRYPTED_IDENTIFIER_SYSTEMS ?? DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS,
    },
    events: { retentionMs: c.EVENTS_RETENTION_HOURS * 3_600_000, dispatchIntervalMs: c.EVENTS_DISPATCH_INTERVAL_MS },
    jobs: {
      concurrency: c.JOBS_CONCURRENCY,
      inServe: c.JOBS_IN_SERVE,
      attempts: c.JOBS_ATTEMPTS,
      backoffMs: c.JOBS_BACKOFF_MS,
      failedRetentionMs: c.JOBS_FAILED_RETENTION_DAYS * 86_400_000,
      ...(c.JOBS_PREFIX ? { prefix: c.JOBS_PREFIX } : {}),
      schemaWaitMs: c.JOBS_SCHEMA_WAIT_MS,
      schedules: { auditSealMs: c.AUDIT_SEAL_INTERVAL_MS, idempotencySweepMs: c.IDEMPOTENCY_SWEEP_INTERVAL_MS },
    },
    ...(c.OTEL_EXPORTER_OTLP_ENDPOINT && !c.OTEL_SDK_DISABLED
      ? {
          tracing: {
            tracesUrl: tracesUrlOf(c.OTEL_EXPORTER_OTLP_ENDPOINT),
            headers: c.OTEL_EXPORTER_OTLP_HEADERS ?? {},
            serviceName: c.OTEL_SERVICE_NAME ?? c.OTEL_RESOURCE_ATTRIBUTES?.['service.name'] ?? 'carebase',
            resourceAttributes: c.OTEL_RESOURCE_ATTRIBUTES ?? {},
            sampleRatio: c.OTEL_TRACES_SAMPLER_ARG,
          },
        }
      : {}),
    health: { intervalMs: c.HEALTH_CHECK_INTERVAL_MS, ...(c.ALERT_WEBHOOK_URL ? { webhookUrl: c.ALERT_WEBHOOK_URL } : {}) },
    circuits: {
      failureThreshold: c.CIRCUIT_FAILURE_THRESHOLD,
      halfOpenAfterMs: c.CIRCUIT_HALF_OPEN_AFTER_MS,
      timeoutMs: c.CIRCUIT_TIMEOUT_MS,
      retries: c.CIRCUIT_RETRIES,
      retryDelayMs: c.CIRCUIT_RETRY_DELAY_MS,
      ...(c.CIRCUIT_SCOPE ? { scope: c.CIRCUIT_SCOPE } : {}),
      operatorTenants: c.CIRCUIT_OPERATOR_TENANTS ?? [],
    },
    ...(c.SENTRY_DSN
      ? { errorTracking: { dsn: c.SENTRY_DSN, environment: c.SENTRY_ENVIRONMENT ?? c.NODE_ENV, release: c.SENTRY_RELEASE ?? `carebase@${packageVersion()}`, sampleRate: c.SENTRY_SAMPLE_RATE } }
      : {}),
    rateLimits: Object.fromEntries(RATE_LIMIT_GROUPS.map((g) => [g, { points: c[`RATE_LIMIT_${g}_POINTS`], durationSeconds: c[`RATE_LIMIT_${g}_DURATION`] }])) as Record<RateLimitGroup, GroupLimit>,
    trustProxy: c.TRUST_PROXY ?? false,
    security: {
      corsOrigins: c.CORS_ORIGINS ?? [],
      jsonMaxDepth: c.JSON_MAX_DEPTH,
      requestTimeoutMs: c.REQUEST_TIMEOUT_MS,
      requireHttps: c.REQUIRE_HTTPS,
      https: c.REQUIRE_HTTPS || tls !== undefined,
    },
    ...(tls ? { tls } : {}),
    metrics: { ...(c.METRICS_TOKEN ? { token: c.METRICS_TOKEN } : {}), ...(c.METRICS_PORT ? { port: c.METRICS_PORT } : {}) },
  });
}
