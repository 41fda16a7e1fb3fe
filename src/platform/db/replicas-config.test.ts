// DATABASE_READ_* through loadConfig: replicas only with a primary, every entry a postgres:// URL,
// one problem line per bad variable naming it (main.ts prints them and exits 2).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { configProblems } from '../../../test/helpers/config.js';

const primary = { DATABASE_URL: 'postgres://carebase@db-primary:5432/carebase' };

describe('read replica configuration (DATABASE_READ_*)', () => {
  it('has none by default', () => {
    expect(loadConfig(primary).database).not.toHaveProperty('replicas');
  });

  it('takes a comma-separated list, a lag limit and a read-your-writes window (defaults 10 s each)', () => {
    const d = loadConfig({ ...primary, DATABASE_READ_URLS: ' postgres://carebase@db-r1/carebase, postgresql://carebase@db-r2:6432/carebase ,' }).database;
    expect(d).toMatchObject({ replicas: { urls: ['postgres://carebase@db-r1/carebase', 'postgresql://carebase@db-r2:6432/carebase'], maxLagSeconds: 10, afterWriteSeconds: 10 } });
    const tuned = loadConfig({ ...primary, DATABASE_READ_URLS: 'postgres://db-r1/c', DATABASE_READ_MAX_LAG_SECONDS: '3', DATABASE_READ_AFTER_WRITE_SECONDS: '30' }).database;
    expect(tuned).toMatchObject({ replicas: { maxLagSeconds: 3, afterWriteSeconds: 30 } });
  });

  it('refuses replicas without a primary, entries that are not postgres URLs, and bad numbers', () => {
    expect(configProblems({ DATABASE_READ_URLS: 'postgres://db-r1/c' })).toEqual([expect.stringMatching(/^DATABASE_READ_URLS: .*DATABASE_URL/)]);
    for (const bad of ['mysql://db-r1/c', 'postgres://db-r1/c,not a url', ' , ']) {
      const p = configProblems({ ...primary, DATABASE_READ_URLS: bad });
      expect(p, bad).toHaveLength(1);
      expect(p[0]).toMatch(/^DATABASE_READ_URLS: /);
    }
    const p = configProblems({ ...primary, DATABASE_READ_URLS: 'postgres://db-r1/c', DATABASE_READ_MAX_LAG_SECONDS: '0', DATABASE_READ_AFTER_WRITE_SECONDS: 'soon' });
    expect(p.map((l) => l.split(':')[0]).sort()).toEqual(['DATABASE_READ_AFTER_WRITE_SECONDS', 'DATABASE_READ_MAX_LAG_SECONDS']);
  });

  it('never shows a replica URL in a problem line (it may hold a password)', () => {
    const p = configProblems({ ...primary, DATABASE_READ_URLS: 'postgres://u:s3cret@db-r1/c,https://u:s3cret@x' });
    expect(p.join('\n')).not.toContain('s3cret');
  });
});
