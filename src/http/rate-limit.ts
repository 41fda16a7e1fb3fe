// Rate limits on /v1 routes, per route group (platform/ratelimit): authenticated requests by
// tenant + user, anonymous ones by client IP (TRUST_PROXY decides which address that is).
//
// - READ (GET/HEAD), WRITE (other methods), EXPORT (…/export), REALTIME (GET /v1/events, /v1/ws),
//   AUTH (issuing real-time tickets; and failed authentications, by IP), SYNC (schedule sync).
// - Every limited response carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
//   (seconds); a refusal is 429 RATE_LIMITED with Retry-After.
// - Failed authentications (401) cost the client IP a point of AUTH; once they are spent, further
//   requests from that IP are refused before their token is even checked. This instance only
//   checks IPs it has seen fail (so a clean request costs no lookup), against the shared count.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../container.js';
import type { Principal } from '../auth/principal.js';
import { AppError } from '../errors.js';
import { createRateLimiters, type RateLimitGroup, type Verdict } from '../platform/ratelimit/limiters.js';
import { routeOf } from './route.js';

export function groupOf(method: string, url: string): RateLimitGroup {
  if (url === '/v1/events' || url === '/v1/ws') return 'REALTIME';
  if (url === '/v1/realtime/tickets') return 'AUTH';
  if (url.endsWith('/export')) return 'EXPORT';
  if (url.startsWith('/v1/sync') || url.endsWith('/sync')) return 'SYNC';
  return method === 'GET' || method === 'HEAD' ? 'READ' : 'WRITE';
}

function setHeaders(reply: FastifyReply, v: Verdict): void {
  // Lower case as fastify stores and sends them (it lower-cases every name it is given, per call).
  reply.header('ratelimit-limit', v.limit).header('ratelimit-remaining', v.remaining).header('ratelimit-reset', v.resetSeconds);
}

// A user's key is made once per principal (the verifier hands out one per token): a new string
// per request would be built, flattened and hashed again for each lookup of its lease.
const userKeys = new WeakMap<Principal, string>();
function keyOf(request: FastifyRequest): string {
  const p = request.principal;
  if (!p) return `ip:${request.ip}`;
  let key = userKeys.get(p);
  if (key === undefined) userKeys.set(p, (key = `t:${p.tenantId}:u:${p.sub}`));
  return key;
}

const refused = (v: Verdict) => new AppError('RATE_LIMITED', `Too many requests; retry in ${v.resetSeconds} s`, undefined, { 'Retry-After': String(v.resetSeconds) });

export async function registerRateLimits(app: FastifyInstance, deps: Deps): Promise<{ beforeAuth(): void; afterAuth(): void }> {
  const limiters = createRateLimiters({ limits: deps.config.rateLimits, log: deps.log, ...(deps.config.redisUrl ? { redisUrl: deps.config.redisUrl } : {}) });
  // Requests checked before the connection is up would be counted by this instance alone.
  if (!(await limiters.connected(2000))) deps.log.warn('rate limit: Redis not reachable at start; limiting in memory until it is');
  deps.metrics.cumulative('rate_limit_fallbacks_total', 'Rate-limit checks made by the in-memory limiter because Redis was unavailable', () => limiters.stats().fallbacks);
  const rejections = deps.metrics.counter('rate_limit_rejections_total', 'Requests refused with 429 by route group', ['group']);
  // IPs this instance has seen fail authentication recently (bounded; oldest forgotten first).
  const failing = new Map<string, number>();
  const authWindowMs = deps.config.rateLimits.AUTH.durationSeconds * 1000;
  const limited = (request: FastifyRequest) => routeOf(request).url?.startsWith('/v1/') === true;
  app.addHook('onClose', () => limiters.close());
  // Not a closure made per request: tsx compiles with esbuild's keepNames, which names each one
  // with Object.defineProperty as it is made (~1 µs a request here, profiled).
  const answer = (reply: FastifyReply, group: RateLimitGroup, v: Verdict, done: (err?: Error) => void) => {
    setHeaders(reply, v);
    if (v.allowed) return done();
    rejections.inc({ group });
    done(refused(v));
  };

  // Callback hooks with synchronous fast paths: a request that needs no lookup (nearly all of
  // them) costs no promise and no microtask here.
  return {
    // Before authentication: an IP whose failed attempts are spent is refused without checking its token.
    beforeAuth() {
      app.addHook('onRequest', (request, reply, done) => {
        // Nearly always empty: then not even the client address is looked up.
        if (failing.size === 0 || !limited(request)) return done();
        const since = failing.get(request.ip);
        if (since === undefined) return done();
        if (Date.now() - since > authWindowMs) {
          failing.delete(request.ip);
          return done();
        }
        limiters.peek('AUTH', `ip:${request.ip}`).then((v) => {
          if (v.allowed) return done();
          setHeaders(reply, v);
          rejections.inc({ group: 'AUTH' });
          done(refused(v));
        }, done);
      });
      app.addHook('onResponse', (request, _reply, done) => {
        if (request.errorCode !== 'UNAUTHENTICATED' || !limited(request)) return done();
        failing.delete(request.ip);
        failing.set(request.ip, Date.now());
        if (failing.size > 10_000) failing.delete(failing.keys().next().value!);
        limiters.consume('AUTH', `ip:${request.ip}`).then(
          () => done(),
          (err: unknown) => {
            request.log.warn({ err }, 'rate limit: counting a failed authentication failed');
            done();
          },
        );
      });
    },
    // After authentication: the request's own group, by user when there is one.
    afterAuth() {
      app.addHook('onRequest', (request, reply, done) => {
        const url = routeOf(request).url;
        if (url === undefined || !limited(request)) return done();
        const group = groupOf(request.method, url);
        const key = keyOf(request);
        const leased = limiters.consumeLeased(group, key);
        if (leased) answer(reply, group, leased, done);
        else limiters.consume(group, key).then((v) => answer(reply, group, v, done), done);
      });
    },
  };
}
