// The log guard every test server runs at close must be able to fail.
import { describe, expect, it } from 'vitest';
import { phiInLogs } from './helpers/phi-guard.js';

describe('PHI log guard', () => {
  it('finds test patients’ values and SSN-like numbers in log lines, case-insensitively', () => {
    expect(phiInLogs(['{"msg":"request","route":"/v1/patients/:id","status":200}'])).toEqual([]);
    expect(phiInLogs(['{"msg":"oops","name":"NÚÑEZ"}'])).toEqual(['núñez']);
    expect(phiInLogs(['{"err":"duplicate 123-45-6789"}'])).toEqual(['an SSN-like value']);
    expect(phiInLogs(['{"requestId":"0192f3c4-1a2b-7c3d-8e4f-123456789abc","time":"2026-11-23T04:00:00.000Z"}'])).toEqual([]);
  });
});
