// SENTRY_* through loadConfig: off without a DSN, defaults, and one problem line per bad variable
// that names it and never repeats a DSN (it holds the project's key).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { configProblems } from '../../../test/helpers/config.js';

const version = (await import('../../../package.json', { with: { type: 'json' } })).default.version;

describe('error tracking configuration (SENTRY_*)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'carebase-sentry-cfg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off without SENTRY_DSN, whatever else is set', () => {
    expect(loadConfig({}).errorTracking).toBeUndefined();
    expect(loadConfig({ SENTRY_ENVIRONMENT: 'staging', SENTRY_SAMPLE_RATE: '0.5', SENTRY_DSN: '' }).errorTracking).toBeUndefined();
  });

  it('defaults the environment to NODE_ENV, the release to the package version and the sample rate to 1', () => {
    expect(loadConfig({ SENTRY_DSN: 'https://abc123@o1.ingest.sentry.io/4506' }).errorTracking).toEqual({
      dsn: 'https://abc123@o1.ingest.sentry.io/4506',
      environment: 'development',
      release: `carebase@${version}`,
      sampleRate: 1,
    });
    expect(loadConfig({ SENTRY_DSN: 'http://k@127.0.0.1:9000/1', NODE_ENV: 'test' }).errorTracking?.environment).toBe('test');
  });

  it('takes SENTRY_ENVIRONMENT, SENTRY_RELEASE and SENTRY_SAMPLE_RATE, and DSNs with a path prefix', () => {
    expect(loadConfig({ SENTRY_DSN: 'https://k@sentry.internal:8443/relay/sentry/7', SENTRY_ENVIRONMENT: 'eu-staging', SENTRY_RELEASE: 'carebase@2.0.0+abc123', SENTRY_SAMPLE_RATE: '0.25' }).errorTracking).toEqual({
      dsn: 'https://k@sentry.internal:8443/relay/sentry/7',
      environment: 'eu-staging',
      release: 'carebase@2.0.0+abc123',
      sampleRate: 0.25,
    });
  });

  it('refuses a malformed DSN with one line naming SENTRY_DSN, without its value', () => {
    for (const dsn of ['not a url', 'ftp://key@sentry.example.org/1', 'https://sentry.example.org/1', 'https://key@sentry.example.org/', 'https://key@sentry.example.org/project', 'https://key@sentry.example.org/1/', 'https://key@sentry.example.org/1?x=y']) {
      const p = configProblems({ SENTRY_DSN: dsn });
      expect(p, dsn).toHaveLength(1);
      expect(p[0]).toMatch(/^SENTRY_DSN: must be a Sentry DSN/);
      expect(p[0]).not.toContain('sentry.example.org');
    }
  });

  it('refuses bad SENTRY_SAMPLE_RATE, SENTRY_ENVIRONMENT and SENTRY_RELEASE values, one line each', () => {
    const p = configProblems({ SENTRY_DSN: 'https://k@sentry.example.org/1', SENTRY_SAMPLE_RATE: '1.5', SENTRY_ENVIRONMENT: 'has space', SENTRY_RELEASE: 'a/b' });
    expect(p.map((l) => l.split(':')[0]).sort()).toEqual(['SENTRY_ENVIRONMENT', 'SENTRY_RELEASE', 'SENTRY_SAMPLE_RATE']);
    expect(configProblems({ SENTRY_SAMPLE_RATE: 'often' })[0]).toMatch(/^SENTRY_SAMPLE_RATE: /);
    expect(configProblems({ SENTRY_RELEASE: '..' })[0]).toMatch(/^SENTRY_RELEASE: /);
  });

  it('reads SENTRY_DSN from SENTRY_DSN_FILE (a Docker/Kubernetes secret), not both', () => {
    const file = join(dir, 'dsn');
    writeFileSync(file, 'https://filekey@sentry.example.org/3\n');
    expect(loadConfig({ SENTRY_DSN_FILE: file }).errorTracking?.dsn).toBe('https://filekey@sentry.example.org/3');
    expect(configProblems({ SENTRY_DSN_FILE: file, SENTRY_DSN: 'https://k@sentry.example.org/1' })).toEqual(['SENTRY_DSN_FILE: set either SENTRY_DSN or SENTRY_DSN_FILE, not both']);
    writeFileSync(file, 'sentry.example.org\n');
    expect(configProblems({ SENTRY_DSN_FILE: file })).toEqual([expect.stringMatching(/^SENTRY_DSN: must be a Sentry DSN/)]);
  });
});
