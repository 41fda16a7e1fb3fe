import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DevIssuer } from '../auth/dev-issuer.js';

/** The development issuer's public keys, so other services (and jwt.io) can verify its tokens. */
export function jwksRoutes(issuer: DevIssuer): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/.well-known/jwks.json',
      {
        schema: {
          tags: ['auth'],
          summary: 'Public keys of the development token issuer (only when AUTH_JWKS_URL is unset)',
          response: { 200: Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) }) },
        },
      },
      async () => issuer.publicJwks,
    );
  };
}
