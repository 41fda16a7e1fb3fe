// CIRCUIT_* through loadConfig: defaults, accepted values, and one problem line per bad variable
// naming it (main.ts prints them and exits 2).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { configProblems } from '../../../test/helpers/config.js';

describe('circuit breaker configuration (CIRCUIT_*)', () => {
  it('has defaults: 5 failures, 30 s open, 5 s per attempt, 2 retries from 200 ms, scope from the database', () => {
    expect(loadConfig({}).circuits).toEqual({ failureThreshold: 5, halfOpenAfterMs: 30_000, timeoutMs: 5000, retries: 2, retryDelayMs: 200, operatorTenants: [] });
  });

  it('takes every variable', () => {
    expect(
      loadConfig({ CIRCUIT_FAILURE_THRESHOLD: '3', CIRCUIT_HALF_OPEN_AFTER_MS: '1000', CIRCUIT_TIMEOUT_MS: '250', CIRCUIT_RETRIES: '0', CIRCUIT_RETRY_DELAY_MS: '50', CIRCUIT_SCOPE: 'eu-prod', CIRCUIT_OPERATOR_TENANTS: 'ops, ops,platform' }).circuits,
    ).toEqual({ failureThreshold: 3, halfOpenAfterMs: 1000, timeoutMs: 250, retries: 0, retryDelayMs: 50, scope: 'eu-prod', operatorTenants: ['ops', 'platform'] });
  });

  it('refuses bad values, one line each naming the variable', () => {
    const p = configProblems({
      CIRCUIT_FAILURE_THRESHOLD: '0',
      CIRCUIT_HALF_OPEN_AFTER_MS: 'soon',
      CIRCUIT_TIMEOUT_MS: '10',
      CIRCUIT_RETRIES: '11',
      CIRCUIT_RETRY_DELAY_MS: '1.5',
      CIRCUIT_SCOPE: 'has space',
      CIRCUIT_OPERATOR_TENANTS: 'ops,Not_A_Tenant',
    });
    expect(p.map((l) => l.split(':')[0]).sort()).toEqual(['CIRCUIT_FAILURE_THRESHOLD', 'CIRCUIT_HALF_OPEN_AFTER_MS', 'CIRCUIT_OPERATOR_TENANTS', 'CIRCUIT_RETRIES', 'CIRCUIT_RETRY_DELAY_MS', 'CIRCUIT_SCOPE', 'CIRCUIT_TIMEOUT_MS']);
    expect(configProblems({ CIRCUIT_RETRIES: '-1' })).toHaveLength(1);
  });
});
