// The development key ring: generated once in DATA_DIR/keys with private permissions, reused on
// every start, the same for processes that start together, and never used when keys are configured.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';
import { DEV_KEY_FILE, loadDevKeyMaterial } from './dev-keys.js';
import { loadKeyRing } from './index.js';
import { cliEnv } from '../../../test/helpers/process.js';

const run = promisify(execFile);
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'carebase-keys-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const AAD = ['tenant-a', 'patient.identifier', 'http://hl7.org/fhir/sid/us-ssn'];
const ringOf = (dataDir: string) => loadKeyRing(loadConfig({ DATA_DIR: dataDir }).encryption);

describe('development key ring', () => {
  it('is created on first use in DATA_DIR/keys, private to its owner, and reused afterwards', () => {
    const dataDir = tempDir();
    const first = ringOf(dataDir);
    const file = join(dataDir, 'keys', DEV_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'keys')).mode & 0o077).toBe(0);
    expect(readdirSync(join(dataDir, 'keys'))).toEqual([DEV_KEY_FILE]); // no temporary files left

    const ct = first.encrypt('123-45-6789', AAD);
    const again = ringOf(dataDir);
    expect(again.primaryKeyId).toBe(first.primaryKeyId);
    expect(again.decrypt(ct, AAD)).toBe('123-45-6789');
    expect(again.blindIndex('t', 's', 'v')).toBe(first.blindIndex('t', 's', 'v'));
    // A different data directory is a different ring.
    expect(() => ringOf(tempDir()).decrypt(ct, AAD)).toThrow();
  });

  it('is written in the environment variables\' own syntax, and loads as them', () => {
    const dataDir = tempDir();
    const ring = ringOf(dataDir);
    const text = readFileSync(join(dataDir, 'keys', DEV_KEY_FILE), 'utf8');
    const env = Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(Object.keys(env).sort()).toEqual(['BLIND_INDEX_KEY', 'ENCRYPTION_KEYS']);
    const explicit = loadKeyRing(loadConfig({ DATA_DIR: tempDir(), ...env }).encryption);
    expect(explicit.decrypt(ring.encrypt('x', AAD), AAD)).toBe('x');
    expect(explicit.blindIndex('t', 's', 'v')).toBe(ring.blindIndex('t', 's', 'v'));
  });

  it('processes starting together all end up with the same keys', { timeout: 60_000 }, async () => {
    const dataDir = tempDir();
    const indexUrl = pathToFileURL(fileURLToPath(new URL('./index.ts', import.meta.url))).href;
    const configUrl = pathToFileURL(fileURLToPath(new URL('../../config.ts', import.meta.url))).href;
    // Each child loads the ring and prints a ciphertext and a blind index: never key material.
    // They all start loading at the same instant (a spin until goAt), to race for real.
    const goAt = Date.now() + 4000;
    const script = `
      const { loadKeyRing } = await import(${JSON.stringify(indexUrl)});
      const { loadConfig } = await import(${JSON.stringify(configUrl)});
      await new Promise((r) => setTimeout(r, Math.max(0, ${goAt} - 20 - Date.now())));
      while (Date.now() < ${goAt});
      const ring = loadKeyRing(loadConfig({ DATA_DIR: ${JSON.stringify(dataDir)} }).encryption);
      process.stdout.write(JSON.stringify({ ct: ring.encrypt('probe', ['p']), bi: ring.blindIndex('t', 's', 'v') }));
    `;
    const outputs = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: cliEnv({ NODE_ENV: 'test' }) })),
    );
    const results = outputs.map((o) => JSON.parse(o.stdout) as { ct: string; bi: string });
    const ring = ringOf(dataDir);
    for (const r of results) {
      expect(r.bi).toBe(ring.blindIndex('t', 's', 'v'));
      expect(ring.decrypt(r.ct, ['p'])).toBe('probe');
    }
    expect(readdirSync(join(dataDir, 'keys'))).toEqual([DEV_KEY_FILE]);
  });

  it('a damaged key file is a configuration error naming DATA_DIR, never silently replaced', () => {
    const dataDir = tempDir();
    ringOf(dataDir);
    const file = join(dataDir, 'keys', DEV_KEY_FILE);
    writeFileSync(file, 'ENCRYPTION_KEYS=dev1:short\n');
    let err: unknown;
    try {
      ringOf(dataDir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toHaveLength(1);
    expect((err as ConfigError).problems[0]).toMatch(/^DATA_DIR: .*ENCRYPTION_KEYS.*BLIND_INDEX_KEY/);
    expect(readFileSync(file, 'utf8')).toBe('ENCRYPTION_KEYS=dev1:short\n');
  });

  it('is not used (nor created) when keys are configured', () => {
    const dataDir = tempDir();
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 73 + 5) & 0xff)).toString('base64');
    const index = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 151 + 9) & 0xff)).toString('base64');
    const ring = loadKeyRing(loadConfig({ DATA_DIR: dataDir, ENCRYPTION_KEYS: `prod1:${key}`, BLIND_INDEX_KEY: index }).encryption);
    expect(ring.primaryKeyId).toBe('prod1');
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('loadDevKeyMaterial alone gives one key, "dev1", and a separate blind index key', () => {
    const m = loadDevKeyMaterial(join(tempDir(), 'keys'));
    expect(m.keys.map((k) => k.id)).toEqual(['dev1']);
    expect(m.keys[0]!.key).toHaveLength(32);
    expect(m.blindIndexKey).toHaveLength(32);
    expect(m.blindIndexKey.equals(m.keys[0]!.key)).toBe(false);
  });
});
