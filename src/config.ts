// The one place that reads the environment. Everything else receives a frozen Config.
import { z } from 'zod';

const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

const bool = (fallback: boolean) => z.stringbool().optional().transform((v) => v ?? fallback);
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).optional().transform((v) => v ?? fallback);
const postgresUrl = z
  .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' })
  .optional();

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: int(8080, 0, 65535),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: postgresUrl,
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
  })
  .superRefine((c, ctx) => {
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
  readonly shutdownTimeoutMs: number;
}

/** Thrown with one line per problem, each naming the variable. main.ts prints them and exits 2. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

export const DEV_ISSUER = 'carebase-dev';
export const DEV_AUDIENCE = 'carebase';

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as in most twelve-factor tools.
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`));
  }
  const c = parsed.data;
  const dataDir = c.DATA_DIR;
  const database: Config['database'] = c.DATABASE_URL
    ? {
        kind: 'postgres',
        url: c.DATABASE_URL,
        poolSize: c.DATABASE_POOL_SIZE,
        connectTimeoutMs: c.DATABASE_CONNECT_TIMEOUT_MS,
        statementTimeoutMs: c.DATABASE_STATEMENT_TIMEOUT_MS,
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
    shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT_MS,
  });
}
