// The route groups rate limits are configured by. Apart from limiters.ts so that config.ts can name
// them without importing ioredis: the tracing bootstrap reads the config before any instrumented
// module (pg, ioredis, pino, fastify) may be loaded (src/platform/tracing/bootstrap.ts).
export const RATE_LIMIT_GROUPS = ['READ', 'WRITE', 'AUTH', 'EXPORT', 'SYNC', 'REALTIME'] as const;
export type RateLimitGroup = (typeof RATE_LIMIT_GROUPS)[number];

export interface GroupLimit {
  points: number;
  durationSeconds: number;
}
