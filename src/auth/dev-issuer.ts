// The development token issuer: an ES256 key pair kept in DATA_DIR so tokens survive restarts.
// Used only when AUTH_JWKS_URL is unset, and config refuses that combination in production.
import { randomUUID } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import type { Role } from './principal.js';

export interface DevIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly publicJwks: { keys: JWK[] };
  sign(claims: DevTokenClaims, ttlSeconds?: number): Promise<string>;
}

export interface DevTokenClaims {
  sub: string;
  tenant: string;
  roles: Role[];
  patientId?: string;
}

const ALG = 'ES256';

export async function loadDevIssuer(keyDir: string, issuer: string, audience: string): Promise<DevIssuer> {
  const file = join(keyDir, 'signing-key.jwk.json');
  let privateJwk: JWK;
  if (existsSync(file)) {
    privateJwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  } else {
    const { privateKey } = await generateKeyPair(ALG, { extractable: true });
    privateJwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: ALG, use: 'sig' };
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    // Written whole to a private file, then linked into place: link() is atomic and fails if
    // another process got there first, so nobody ever reads a half-written key; then use theirs.
    const tmp = `${file}.${process.pid}.${randomUUID()}`;
    writeFileSync(tmp, JSON.stringify(privateJwk), { mode: 0o600 });
    try {
      linkSync(tmp, file);
    } catch {
      privateJwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    } finally {
      unlinkSync(tmp);
    }
  }
  const { d: _d, ...publicJwk } = privateJwk;
  const key = (await importJWK(privateJwk, ALG)) as CryptoKey;
  return {
    issuer,
    audience,
    publicJwks: { keys: [publicJwk] },
    async sign(c, ttlSeconds = 3600) {
      return new SignJWT({ tenant: c.tenant, roles: c.roles, ...(c.patientId ? { patient_id: c.patientId } : {}) })
        .setProtectedHeader({ alg: ALG, kid: privateJwk.kid!, typ: 'JWT' })
        .setSubject(c.sub)
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(key);
    },
  };
}
