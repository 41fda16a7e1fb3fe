// What GET /v1/admin/performance reports: this instance's recent requests per route — rate,
// errors, latency percentiles — plus cache hit ratio and database pool saturation, over a sliding
// window (default 5 min) of fixed buckets (default 10 s). Prometheus holds the long history and
// the fleet-wide view; this answers "what is slow right now, here" without one.
//
// Latencies go into a fixed log-spaced histogram per route and bucket, so memory is bounded by
// routes × buckets × bins whatever the traffic, and percentiles are interpolated within a bin.

/** Upper bounds (ms) of the histogram's bins; the last bin is open. */
const BOUNDS_MS = [1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10_000];

interface RouteStats {
  count: number;
  serverErrors: number;
  clientErrors: number;
  sumMs: number;
  bins: Uint32Array;
}

interface Bucket {
  start: number;
  /** route → method → stats: found without building a key string per request. */
  routes: Map<string, Map<string, RouteStats>>;
  /** Cumulative cache counts when the bucket opened. */
  cache: { hits: number; misses: number };
  pool: { samples: number; inUse: number; size: number; maxWaiting: number };
}

export interface RouteReport {
  method: string;
  route: string;
  requests: number;
  requestsPerSecond: number;
  /** Share of answers with status ≥ 500. */
  errorRate: number;
  /** Share of answers with status 400–499. */
  clientErrorRate: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface PerformanceReport {
  windowSeconds: number;
  since: string;
  requests: number;
  requestsPerSecond: number;
  errorRate: number;
  routes: RouteReport[];
  /** The five routes with the highest p95. */
  slowest: RouteReport[];
  cache: { hits: number; misses: number; hitRatio: number | null };
  /** Server mode only: the pool's average use (0–1) and the most requests seen waiting. */
  databasePool: { utilization: number; maxWaiting: number } | null;
}

export interface PerformanceWindowOptions {
  windowMs?: number;
  bucketMs?: number;
  now?: () => number;
  cacheStats: () => { hits: number; misses: number };
  poolStats?: () => { inUse: number; idle: number; waiting: number };
}

export interface PerformanceWindow {
  observe(method: string, route: string, status: number, ms: number): void;
  /** Takes a pool sample (the container calls it every second). */
  samplePool(): void;
  report(): PerformanceReport;
}

function percentile(bins: Uint32Array, total: number, q: number): number {
  if (total === 0) return 0;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < bins.length; i++) {
    const n = bins[i]!;
    if (n === 0) continue;
    if (seen + n >= rank) {
      const lo = i === 0 ? 0 : BOUNDS_MS[i - 1]!;
      const hi = BOUNDS_MS[i] ?? lo * 2;
      return Number((lo + ((hi - lo) * (rank - seen)) / n).toFixed(2));
    }
    seen += n;
  }
  return BOUNDS_MS.at(-1)!;
}

const binOf = (ms: number) => {
  let i = 0;
  while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
  return i;
};

export function createPerformanceWindow(o: PerformanceWindowOptions): PerformanceWindow {
  const windowMs = o.windowMs ?? 300_000;
  const bucketMs = o.bucketMs ?? 10_000;
  const now = o.now ?? Date.now;
  const buckets: Bucket[] = [];

  function current(): Bucket {
    const t = now();
    const start = t - (t % bucketMs);
    let b = buckets.at(-1);
    if (!b || b.start !== start) {
      b = { start, routes: new Map(), cache: { ...o.cacheStats() }, pool: { samples: 0, inUse: 0, size: 0, maxWaiting: 0 } };
      buckets.push(b);
      while (buckets.length > 0 && buckets[0]!.start <= t - windowMs) buckets.shift();
    }
    return b;
  }

  return {
    observe(method, route, status, ms) {
      const routes = current().routes;
      let byMethod = routes.get(route);
      if (!byMethod) routes.set(route, (byMethod = new Map()));
      let s = byMethod.get(method);
      if (!s) byMethod.set(method, (s = { count: 0, serverErrors: 0, clientErrors: 0, sumMs: 0, bins: new Uint32Array(BOUNDS_MS.length + 1) }));
      s.count++;
      s.sumMs += ms;
      s.bins[binOf(ms)]!++;
      if (status >= 500) s.serverErrors++;
      else if (status >= 400) s.clientErrors++;
    },
    samplePool() {
      const p = o.poolStats?.();
      if (!p) return;
      const pool = current().pool;
      pool.samples++;
      pool.inUse += p.inUse;
      pool.size += p.inUse + p.idle;
      pool.maxWaiting = Math.max(pool.maxWaiting, p.waiting);
    },
    report() {
      current(); // rotates out what left the window
      const first = buckets[0]!;
      const seconds = Math.max(1, (now() - first.start) / 1000);
      const merged = new Map<string, RouteStats>();
      for (const b of buckets) {
        for (const [route, byMethod] of b.routes) {
          for (const [method, s] of byMethod) {
            const key = `${method} ${route}`;
            let m = merged.get(key);
            if (!m) merged.set(key, (m = { count: 0, serverErrors: 0, clientErrors: 0, sumMs: 0, bins: new Uint32Array(BOUNDS_MS.length + 1) }));
            m.count += s.count;
            m.serverErrors += s.serverErrors;
            m.clientErrors += s.clientErrors;
            m.sumMs += s.sumMs;
            for (let i = 0; i < s.bins.length; i++) m.bins[i]! += s.bins[i]!;
          }
        }
      }
      const routes: RouteReport[] = [...merged].map(([key, s]) => {
        const [method, route] = [key.slice(0, key.indexOf(' ')), key.slice(key.indexOf(' ') + 1)];
        return {
          method: method!,
          route: route!,
          requests: s.count,
          requestsPerSecond: Number((s.count / seconds).toFixed(2)),
          errorRate: Number((s.serverErrors / s.count).toFixed(4)),
          clientErrorRate: Number((s.clientErrors / s.count).toFixed(4)),
          meanMs: Number((s.sumMs / s.count).toFixed(2)),
          p50Ms: percentile(s.bins, s.count, 0.5),
          p95Ms: percentile(s.bins, s.count, 0.95),
          p99Ms: percentile(s.bins, s.count, 0.99),
        };
      });
      routes.sort((a, b) => b.requests - a.requests);
      const requests = routes.reduce((n, r) => n + r.requests, 0);
      const serverErrors = [...merged.values()].reduce((n, s) => n + s.serverErrors, 0);
      const cacheNow = o.cacheStats();
      const hits = cacheNow.hits - first.cache.hits;
      const misses = cacheNow.misses - first.cache.misses;
      const pool = buckets.reduce((a, b) => ({ samples: a.samples + b.pool.samples, inUse: a.inUse + b.pool.inUse, size: a.size + b.pool.size, maxWaiting: Math.max(a.maxWaiting, b.pool.maxWaiting) }), { samples: 0, inUse: 0, size: 0, maxWaiting: 0 });
      return {
        windowSeconds: Math.round(seconds),
        since: new Date(first.start).toISOString(),
        requests,
        requestsPerSecond: Number((requests / seconds).toFixed(2)),
        errorRate: requests ? Number((serverErrors / requests).toFixed(4)) : 0,
        routes,
        slowest: [...routes].sort((a, b) => b.p95Ms - a.p95Ms).slice(0, 5),
        cache: { hits, misses, hitRatio: hits + misses > 0 ? Number((hits / (hits + misses)).toFixed(4)) : null },
        databasePool: o.poolStats ? { utilization: pool.size > 0 ? Number((pool.inUse / pool.size).toFixed(4)) : 0, maxWaiting: pool.maxWaiting } : null,
      };
    },
  };
}
