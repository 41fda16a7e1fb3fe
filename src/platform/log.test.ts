// safeError keeps what a log may hold of an error: its type, our own message, codes and stack
// frames; never the message of a database or parser error, which can quote input values.
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { safeError } from './log.js';

describe('safeError', () => {
  it('keeps our own message and code', () => {
    expect(safeError(new AppError('NOT_FOUND', 'Patient not found'))).toMatchObject({ type: 'AppError', code: 'NOT_FOUND', message: 'Patient not found' });
  });

  it('drops a foreign message, even one holding lines shaped like stack frames', () => {
    const phi = 'Ada Lovelace 1815-12-10';
    const err = new Error(`invalid input syntax: "${phi}"\n    at ${phi} (/x.js:1:1)`);
    const out = safeError(err);
    expect(JSON.stringify(out)).not.toContain('Lovelace');
    expect(out.stack).toMatch(/log\.test\.ts/);
  });

  it('names non-errors by type only', () => {
    expect(safeError('a string with PHI')).toEqual({ type: 'string' });
  });
});
