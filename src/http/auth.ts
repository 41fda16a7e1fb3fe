// Authentication for every /v1 route unless the route says `config: { public: true }`.
// Authorization is not here: services check roles and patient scope, so every transport gets it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal.js';
import type { Verifier } from '../auth/verifier.js';
import { AppError } from '../errors.js';
import type { TenantDirectory } from '../features/tenants/tenants.service.js';
import { dispatchedPrincipal } from './realtime/dispatch.js';
import { routeOf } from './route.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    public?: boolean;
    /** A route that also accepts other credentials (real-time tickets) authenticates its requests itself. */
    authenticate?: (request: FastifyRequest) => Promise<Principal>;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

export function registerAuth(app: FastifyInstance, verify: Verifier, tenants: TenantDirectory) {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const route = routeOf(request);
    const url = route.url;
    if (url === undefined || !url.startsWith('/v1/') || route.config.public) return;
    // A request dispatched for a WebSocket connection (a write sent over /v1/ws) acts as that
    // connection's principal, authenticated when it connected (src/http/realtime/dispatch.ts).
    const dispatched = dispatchedPrincipal(request);
    if (dispatched) {
      request.principal = dispatched;
      return;
    }
    const own = route.config.authenticate;
    request.principal = await (own ? own(request) : authenticate(request, verify, tenants));
  });
}

export async function authenticate(request: FastifyRequest, verify: Verifier, tenants: TenantDirectory): Promise<Principal> {
  const header = request.headers.authorization;
  if (!header) throw new AppError('UNAUTHENTICATED', 'Send Authorization: Bearer <token>');
  const m = BEARER.exec(header);
  if (!m) throw new AppError('UNAUTHENTICATED', 'The Authorization header must be Bearer <token>');
  const principal = await verify(m[1]!);
  if (!(await tenants.isProvisioned(principal.tenantId))) throw new AppError('FORBIDDEN', 'The tenant of this token is not provisioned');
  return principal;
}

/** The authenticated principal of a route that requires one. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('UNAUTHENTICATED');
  return request.principal;
}
