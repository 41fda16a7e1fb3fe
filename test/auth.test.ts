// Authentication at the edge: every way a bearer token can be wrong is 401 UNAUTHENTICATED with
// WWW-Authenticate: Bearer; a good token of an unprovisioned tenant is 403. And configuration
// validation (pure, no server).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, UnsecuredJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEV_AUDIENCE, DEV_ISSUER, loadConfig } from '../src/config.js';
import { client, expectError, type Client } from './helpers/http.js';
import { requestLineOf } from './helpers/logs.js';
import { startServer, storageModes, type TestServer } from './helpers/server.js';

const PATIENT_ID = '0192f3c4-0000-7000-8000-00000000abcd';

describe.each(storageModes())('authentication on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let key: CryptoKey;
  let kid: string;
  let anon: Client;

  /** A token signed with the server's own development key, with any claims and header. */
  const sign = (claims: JWTPayload, o: { exp?: string | number; iss?: string; aud?: string; header?: Record<string, unknown>; signWith?: CryptoKey | Uint8Array; alg?: string } = {}) => {
    const jwt = new SignJWT({ tenant, roles: ['clinician'], sub: 'mallory', ...claims })
      .setProtectedHeader({ alg: o.alg ?? 'ES256', kid, typ: 'JWT', ...o.header })
      .setIssuer(o.iss ?? DEV_ISSUER)
      .setAudience(o.aud ?? DEV_AUDIENCE)
      .setIssuedAt();
    if (o.exp !== undefined) jwt.setExpirationTime(o.exp);
    else jwt.setExpirationTime('10m');
    return jwt.sign(o.signWith ?? key);
  };

  const expect401 = async (authorization: string | undefined, what: string) => {
    const res = await anon('GET', '/v1/patients', { headers: authorization === undefined ? {} : { authorization } });
    let err;
    try {
      err = expectError(res, 401, 'UNAUTHENTICATED');
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
    expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer\b/);
    // The response never echoes the token.
    if (authorization && authorization.length > 20) expect(res.text).not.toContain(authorization.slice(-20));
    return err;
  };

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    anon = client(srv.url);
    // The development issuer keeps its private key in DATA_DIR: use it to forge well-signed but wrong tokens.
    const jwk = JSON.parse(readFileSync(join(srv.dataDir, 'dev-issuer', 'signing-key.jwk.json'), 'utf8')) as JWK;
    kid = jwk.kid!;
    key = (await importJWK(jwk, 'ES256')) as CryptoKey;
  });
  afterAll(() => srv?.close());

  it('control: the server\'s own token and a forged one with correct claims are accepted (200)', async () => {
    expect((await anon('GET', '/v1/patients', { token: await srv.token({ tenant, roles: ['clinician'] }) })).status).toBe(200);
    expect((await anon('GET', '/v1/patients', { token: await sign({}) })).status).toBe(200);
    expect((await anon('GET', '/v1/patients', { token: await sign({ roles: ['patient'], patient_id: PATIENT_ID }) })).status).toBe(200);
  });

  it('no Authorization header → 401 with WWW-Authenticate: Bearer, on every protected route', async () => {
    await expect401(undefined, 'none');
    for (const [method, path] of [
      ['GET', '/v1/providers'],
      ['GET', '/v1/locations'],
      ['POST', '/v1/patients'],
      ['GET', `/v1/patients/${PATIENT_ID}`],
      ['DELETE', `/v1/locations/${PATIENT_ID}`],
    ] as const) {
      const res = await anon(method, path, method === 'POST' ? { body: {} } : {});
      expectError(res, 401, 'UNAUTHENTICATED');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    }
  });

  it('a non-Bearer scheme or a malformed header → 401', async () => {
    await expect401('Basic YWxpY2U6c2VjcmV0', 'basic');
    await expect401(`Token ${await sign({})}`, 'other scheme');
    await expect401('Bearer', 'bearer without token');
    await expect401('Bearer ', 'bearer with empty token');
    await expect401(`Bearer ${await sign({})} extra`, 'two tokens');
  });

  it('garbage tokens → 401', async () => {
    await expect401('Bearer garbage', 'garbage');
    await expect401('Bearer a.b.c', 'three garbage parts');
    await expect401('Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA', 'bad signature bytes');
    const good = await sign({});
    await expect401(`Bearer ${good.slice(0, -4)}AAAA`, 'tampered signature');
    const [h, , s] = good.split('.');
    const otherPayload = Buffer.from(JSON.stringify({ tenant, roles: ['admin'], sub: 'mallory', iss: DEV_ISSUER, aud: DEV_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
    await expect401(`Bearer ${h}.${otherPayload}.${s}`, 'payload swapped under a valid signature');
  });

  it('expired, not-yet-valid and exp-less tokens → 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await expect401(`Bearer ${await sign({}, { exp: now - 3600 })}`, 'expired');
    expect(expired.message).toMatch(/expired/i);
    // The dev issuer's own sign() with a negative lifetime, too.
    await expect401(`Bearer ${await srv.deps.devIssuer!.sign({ tenant, roles: ['clinician'], sub: 'x' }, -3600)}`, 'expired (dev issuer)');
    await expect401(`Bearer ${await sign({ nbf: now + 3600 })}`, 'not before in the future');
    const noExp = await new SignJWT({ tenant, roles: ['clinician'], sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).sign(key);
    await expect401(`Bearer ${noExp}`, 'no exp');
  });

  it('wrong audience or wrong issuer → 401', async () => {
    await expect401(`Bearer ${await sign({}, { aud: 'someone-else' })}`, 'audience');
    await expect401(`Bearer ${await sign({}, { iss: 'https://evil.example' })}`, 'issuer');
  });

  it('alg none (unsigned) → 401', async () => {
    const claims = { tenant, roles: ['admin'], sub: 'mallory' };
    const unsecured = new UnsecuredJWT(claims).setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).setIssuedAt().setExpirationTime('10m').encode();
    await expect401(`Bearer ${unsecured}`, 'alg none');
    // With the kid of the real key and "none" spelled differently.
    const [, payload] = unsecured.split('.');
    for (const alg of ['none', 'None', 'NONE']) {
      const header = Buffer.from(JSON.stringify({ alg, kid, typ: 'JWT' })).toString('base64url');
      await expect401(`Bearer ${header}.${payload}.`, `alg ${alg}`);
    }
  });

  it('an HMAC (HS256) token → 401, even with the real kid or the public key as secret', async () => {
    await expect401(`Bearer ${await sign({}, { alg: 'HS256', signWith: new TextEncoder().encode('x'.repeat(32)) })}`, 'HS256 random secret');
    const publicJwk = (await anon('GET', '/.well-known/jwks.json')).body.keys[0];
    const confusion = new TextEncoder().encode(JSON.stringify(publicJwk));
    await expect401(`Bearer ${await sign({}, { alg: 'HS256', signWith: confusion })}`, 'HS256 with public key as secret');
  });

  it('a token signed by a different ES256 key with the same kid → 401', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    await expect401(`Bearer ${await sign({}, { signWith: privateKey })}`, 'other key, same kid');
    const { privateKey: rsa } = await generateKeyPair('RS256');
    await expect401(`Bearer ${await sign({}, { alg: 'RS256', signWith: rsa })}`, 'RS256 key, same kid');
  });

  it('missing or malformed claims → 401 (tenant, sub, roles, patient_id)', async () => {
    const omit = async (claim: string) => {
      const { [claim]: _omitted, ...rest } = { tenant, roles: ['clinician'], sub: 'mallory' } as Record<string, unknown>;
      return new SignJWT(rest).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).setExpirationTime('10m').sign(key);
    };
    const missingTenant = await expect401(`Bearer ${await omit('tenant')}`, 'missing tenant');
    expect(missingTenant.message).toMatch(/tenant/);
    await expect401(`Bearer ${await omit('sub')}`, 'missing sub');
    await expect401(`Bearer ${await omit('roles')}`, 'missing roles');
    for (const bad of ['Bad Tenant!', 'UPPER', '-leading-dash', '', 'a'.repeat(64), '../other', 42, ['t'], null]) {
      await expect401(`Bearer ${await sign({ tenant: bad })}`, `tenant ${JSON.stringify(bad)}`);
    }
    await expect401(`Bearer ${await sign({ roles: 'admin' })}`, 'roles as string');
    await expect401(`Bearer ${await sign({ roles: [1] })}`, 'roles with a number');
    await expect401(`Bearer ${await sign({ sub: '' })}`, 'empty sub');
    for (const sub of ['nul\u0000inside', 'line\nbreak', 'tab\there', 'del\u007f']) await expect401(`Bearer ${await sign({ sub })}`, `sub ${JSON.stringify(sub)}`);
  });

  it('role patient without a (valid) patient_id → 401', async () => {
    const missing = await expect401(`Bearer ${await sign({ roles: ['patient'] })}`, 'patient without patient_id');
    expect(missing.message).toMatch(/patient_id/);
    await expect401(`Bearer ${await sign({ roles: ['patient'], patient_id: 'not-a-uuid' })}`, 'patient_id not a uuid');
    await expect401(`Bearer ${await sign({ roles: ['patient'], patient_id: 12 })}`, 'patient_id a number');
  });

  it('a valid token for a tenant that is not provisioned → 403 FORBIDDEN, not 401', async () => {
    const token = await srv.token({ tenant: 'never-provisioned-tenant', roles: ['admin'] });
    const res = await anon('GET', '/v1/patients', { token });
    expectError(res, 403, 'FORBIDDEN');
    expect(res.headers.get('www-authenticate')).toBeNull();
    expectError(await anon('POST', '/v1/patients', { token, body: {} }), 403, 'FORBIDDEN');
  });

  it('public routes need no token; a bad token on them is ignored', async () => {
    for (const path of ['/health/live', '/health/ready', '/v1/openapi.json', '/.well-known/jwks.json']) {
      expect((await anon('GET', path)).status, path).toBe(200);
      expect((await anon('GET', path, { headers: { authorization: 'Bearer garbage' } })).status, path).toBe(200);
    }
  });

  it('the JWKS at /.well-known/jwks.json holds only public key material that verifies the server\'s tokens', async () => {
    const res = await anon('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    const keys = res.body.keys as JWK[];
    expect(keys.length).toBeGreaterThanOrEqual(1);
    for (const k of keys) {
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) expect(k, secret).not.toHaveProperty(secret);
      expect(k.kty).toBe('EC');
      expect(k.kid).toEqual(expect.any(String));
      expect(['sig', undefined]).toContain(k.use);
    }
    expect(res.text).not.toMatch(/"d"\s*:/);
    const token = await srv.token({ tenant, roles: ['staff'], sub: 'bob' });
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys }), { issuer: DEV_ISSUER, audience: DEV_AUDIENCE });
    expect(payload).toMatchObject({ sub: 'bob', tenant, roles: ['staff'] });
    // And a key exported from a fresh pair would not verify it.
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const stranger = { ...(await exportJWK(publicKey)), kid: keys[0]!.kid, alg: 'ES256' };
    await expect(jwtVerify(token, createLocalJWKSet({ keys: [stranger] }))).rejects.toThrow();
  });

  it('rejected tokens are never logged', async () => {
    const bad = await sign({}, { aud: 'someone-else' });
    const res = await anon('GET', '/v1/patients', { token: bad, headers: { 'x-request-id': `auth-log-${Date.now()}` } });
    expectError(res, 401, 'UNAUTHENTICATED');
    const line = await requestLineOf(srv.logs, res.headers.get('x-request-id')!);
    expect(line).toMatchObject({ status: 401, errorCode: 'UNAUTHENTICATED', route: '/v1/patients' });
    const signature = bad.split('.')[2]!;
    for (const l of srv.logs) {
      expect(l).not.toContain(signature);
      expect(l).not.toContain(bad.split('.')[1]!);
    }
  });
});

describe('configuration (loadConfig)', () => {
  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/^Invalid configuration/);
      return (err as ConfigError).problems;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
  };
  /** Keys production requires (generated per run: never a secret in the repo). */
  const PRODUCTION_SECRETS = {
    AUDIT_HMAC_KEY: randomBytes(32).toString('base64'),
    ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    BLIND_INDEX_KEY: randomBytes(32).toString('base64'),
  };
  /** The variables named at the start of each problem line ("VAR: message"). */
  const varsOf = (problems: string[]) => problems.map((p) => /^([A-Z_][A-Z0-9_]*): \S/.exec(p)?.[1] ?? `(unnamed) ${p}`);

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ AUTH_ALGORITHMS: 'HS256' }, 'AUTH_ALGORITHMS'],
    [{ AUTH_ALGORITHMS: 'ES256,none' }, 'AUTH_ALGORITHMS'],
    [{ NODE_ENV: 'production', ...PRODUCTION_SECRETS }, 'AUTH_JWKS_URL'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ MIGRATE_ON_START: 'maybe' }, 'MIGRATE_ON_START'],
    [{ AUTH_JWKS_URL: 'ftp://idp.example/jwks', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }, 'AUTH_JWKS_URL'],
  ])('%j → one problem, naming %s', (env, variable) => {
    expect(varsOf(problemsOf(env))).toEqual([variable]);
  });

  it('AUTH_JWKS_URL without AUTH_ISSUER and AUTH_AUDIENCE → one problem for each', () => {
    expect(varsOf(problemsOf({ AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json' })).sort()).toEqual(['AUTH_AUDIENCE', 'AUTH_ISSUER']);
  });

  it('all problems at once: one line per variable, each naming it, none missing', () => {
    const problems = problemsOf({
      PORT: 'abc',
      DATABASE_URL: 'mysql://x',
      LOG_LEVEL: 'loud',
      AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
      AUTH_ALGORITHMS: 'HS256',
    });
    expect(varsOf(problems).sort()).toEqual(['AUTH_ALGORITHMS', 'AUTH_AUDIENCE', 'AUTH_ISSUER', 'DATABASE_URL', 'LOG_LEVEL', 'PORT']);
  });

  it('NODE_ENV=production without AUTH_JWKS_URL is reported alongside other problems', () => {
    expect(varsOf(problemsOf({ NODE_ENV: 'production', PORT: 'abc', ...PRODUCTION_SECRETS })).sort()).toEqual(['AUTH_JWKS_URL', 'PORT']);
  });

  it('production refuses to start without the keys kept outside the database, naming each', () => {
    expect(varsOf(problemsOf({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' })).sort()).toEqual([
      'AUDIT_HMAC_KEY', 'BLIND_INDEX_KEY', 'ENCRYPTION_KEYS',
    ]);
  });

  it.each([
    [{ AUDIT_HMAC_KEY: 'c2hvcnQ=' }, 'AUDIT_HMAC_KEY'],
    [{ AUDIT_HMAC_KEY: 'not base64 at all!' }, 'AUDIT_HMAC_KEY'],
    [{ AUDIT_READS: 'sometimes' }, 'AUDIT_READS'],
    [{ AUDIT_FLUSH_MS: '5000' }, 'AUDIT_FLUSH_MS'],
  ])('%j → one problem, naming %s (and never echoing the value)', (env, variable) => {
    const problems = problemsOf(env);
    expect(varsOf(problems)).toEqual([variable]);
    expect(problems.join('\n')).not.toContain(Object.values(env)[0]);
  });

  it('problem lines do not echo secret-looking values', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://admin:s3cr3t-pa55@db.example/x' });
    expect(problems.join('\n')).not.toContain('s3cr3t-pa55');
  });

  it('valid settings load: defaults, production with a JWKS URL, empty values meaning unset', () => {
    const dev = loadConfig({});
    expect(dev).toMatchObject({ port: 8080, host: '0.0.0.0', database: { kind: 'pglite' }, auth: { kind: 'dev' }, bodyLimitBytes: 1024 * 1024 });
    const prod = loadConfig({
      NODE_ENV: 'production',
      PORT: '9000',
      DATABASE_URL: 'postgres://u@db.example:5432/carebase',
      AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
      AUTH_ISSUER: 'https://idp.example',
      AUTH_AUDIENCE: 'carebase',
      AUTH_ALGORITHMS: 'RS256, ES256',
      LOG_LEVEL: '',
      ...PRODUCTION_SECRETS,
    });
    expect(prod).toMatchObject({ env: 'production', port: 9000, logLevel: 'info', database: { kind: 'postgres' }, auth: { kind: 'jwks', algorithms: ['RS256', 'ES256'] } });
    expect(Object.isFrozen(prod)).toBe(true);
  });
});
