// The error vocabulary is one table: ERRORS here, the contract's error table, and the README's.
// A code added, removed or re-statused in one place and not the others fails this test.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AppError, ERRORS, envelope, type ErrorCode } from './errors.js';

const CONTRACT = fileURLToPath(new URL('../../shared/CONTRACT.md', import.meta.url));
const README = fileURLToPath(new URL('../README.md', import.meta.url));

/**
 * The rows of the markdown table whose header is `| code | status | ... |`: code → status.
 * Throws when there is no such table or a code appears twice.
 */
function errorTable(markdown: string): Map<string, number> {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^\|\s*code\s*\|\s*status\s*\|/i.test(l.trim()));
  if (start < 0) throw new Error('no "| code | status |" table found');
  const table = new Map<string, number>();
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith('|')) break;
    const cells = line.split('|').map((c) => c.trim());
    const code = /^`([A-Z_]+)`$/.exec(cells[1] ?? '')?.[1];
    const status = Number(cells[2]);
    if (!code || !Number.isInteger(status)) throw new Error(`unreadable row: ${line}`);
    if (table.has(code)) throw new Error(`${code} listed twice`);
    table.set(code, status);
  }
  return table;
}

const fromErrors = () => new Map(Object.entries(ERRORS).map(([code, e]) => [code, e.status as number]));

describe('the error vocabulary', () => {
  it('ERRORS is well-formed: UPPER_SNAKE codes, 4xx/5xx statuses, non-empty messages', () => {
    expect(Object.keys(ERRORS).length).toBeGreaterThanOrEqual(19);
    for (const [code, e] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z_]*[A-Z]$/);
      expect(e.status).toBeGreaterThanOrEqual(400);
      expect(e.status).toBeLessThan(600);
      expect(e.message.length).toBeGreaterThan(3);
    }
  });

  it.skipIf(!existsSync(CONTRACT))('every code of ERRORS is in CONTRACT.md\'s error table with the same status, and vice versa', () => {
    const documented = errorTable(readFileSync(CONTRACT, 'utf8'));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(fromErrors()));
  });

  it('every code of ERRORS is in README.md\'s error table with the same status, and vice versa', () => {
    expect(existsSync(README), 'README.md exists').toBe(true);
    const documented = errorTable(readFileSync(README, 'utf8'));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(fromErrors()));
  });

  it('the table parser reads a table and refuses a broken one (guards the tests above)', () => {
    const md = '# x\n\n| code | status | when |\n|---|---|---|\n| `A_B` | 400 | x |\n| `C` | 503 | y |\n\nafter\n';
    expect([...errorTable(md)]).toEqual([['A_B', 400], ['C', 503]]);
    expect(() => errorTable('| code | status |\n|---|---|\n| A | 400 |\n')).toThrow(/unreadable/);
    expect(() => errorTable('no table')).toThrow(/no "\| code/);
  });

  it('AppError takes status and default message from ERRORS; envelope() has the contract shape', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      const err = new AppError(code);
      expect(err.status).toBe(ERRORS[code].status);
      expect(err.message).toBe(ERRORS[code].message);
    }
    const now = new Date('2026-11-22T12:34:56.789Z');
    expect(envelope(new AppError('NOT_FOUND'), 'req-1', now)).toEqual({
      success: false,
      error: { code: 'NOT_FOUND', message: ERRORS.NOT_FOUND.message, requestId: 'req-1' },
      timestamp: '2026-11-22T12:34:56.789Z',
    });
    const withDetails = envelope(new AppError('VALIDATION_FAILED', undefined, [{ path: '/x', message: 'bad' }]), 'r', now);
    expect(withDetails.error.details).toEqual([{ path: '/x', message: 'bad' }]);
    expect(envelope(new AppError('VALIDATION_FAILED', undefined, []), 'r', now).error).not.toHaveProperty('details');
  });
});
