// Bearer token verification with jose: signature against a JWKS (remote, or the development
// issuer's local one), an algorithm allow-list (no `none`, no HMAC), issuer, audience, exp, nbf.
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { AppError } from '../errors.js';
import { ROLES, TENANT_ID_PATTERN, type Principal, type Role } from './principal.js';

export interface VerifierOptions {
  jwks: ReturnType<typeof createRemoteJWKSet> | ReturnType<typeof createLocalJWKSet>;
  issuer: string;
  audience: string;
  algorithms: readonly string[];
}

export type Verifier = (token: string) => Promise<Principal>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'The token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `The token's ${err.claim} claim is not accepted`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'The token is signed with an algorithm that is not accepted';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'The token signature is invalid';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'The token was signed by an unknown key';
  return 'The token is invalid';
}

// Verifying a signature costs more CPU than the rest of a cached read, so a verified token is
// remembered briefly: until it expires, and never longer than CACHE_MS, which also bounds how long
// a key removed from the JWKS keeps working. Failures are not cached.
const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

export function createVerifier(o: VerifierOptions, now = () => Date.now()): Verifier {
  const cache = new Map<string, { principal: Principal; until: number }>();
  return async (token) => {
    const hit = cache.get(token);
    if (hit && hit.until > now()) return hit.principal;
    if (hit) cache.delete(token);
    const { principal, exp } = await verifyToken(o, token);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(token, { principal, until: Math.min(exp * 1000, now() + CACHE_MS) });
    return principal;
  };
}

async function verifyToken(o: VerifierOptions, token: string): Promise<{ principal: Principal; exp: number }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, o.jwks, {
      issuer: o.issuer,
      audience: o.audience,
      algorithms: [...o.algorithms],
      requiredClaims: ['sub', 'exp'],
      clockTolerance: 30,
    }));
  } catch (err) {
    throw new AppError('UNAUTHENTICATED', reason(err));
  }
  return { principal: principalFromClaims(payload), exp: payload.exp! };
}

const CONTROL = /[\u0000-\u001f\u007f]/;

function principalFromClaims(c: JWTPayload): Principal {
  const bad = (what: string) => new AppError('UNAUTHENTICATED', `The token's ${what} claim is missing or invalid`);
  // The subject is stored as the actor of audit records and writes: no control characters (a NUL
  // cannot be stored in a PostgreSQL text at all).
  if (typeof c.sub !== 'string' || c.sub.length === 0 || c.sub.length > 255 || CONTROL.test(c.sub)) throw bad('sub');
  if (typeof c.tenant !== 'string' || !TENANT_ID_PATTERN.test(c.tenant)) throw bad('tenant');
  if (!Array.isArray(c.roles) || c.roles.some((r) => typeof r !== 'string')) throw bad('roles');
  // Roles this service does not know are ignored rather than rejected: an identity provider may
  // issue roles for other applications in the same token.
  const roles = new Set((c.roles as string[]).filter((r): r is Role => (ROLES as readonly string[]).includes(r)));
  let patientId: string | undefined;
  if (roles.has('patient')) {
    if (typeof c.patient_id !== 'string' || !UUID.test(c.patient_id)) throw bad('patient_id');
    patientId = c.patient_id.toLowerCase();
  }
  return { sub: c.sub, tenantId: c.tenant, roles, ...(patientId ? { patientId } : {}) };
}
