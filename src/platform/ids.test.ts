// Ids are valid UUIDv7 (the database's uuid column and every client accept them), unique, ordered
// within the process, and idAt/idFloor map times onto id ranges.
import { validate, version } from 'uuid';
import { describe, expect, it } from 'vitest';
import { idAt, idFloor, newId } from './ids.js';

describe('ids', () => {
  it('newId: valid UUIDv7s, unique and increasing, also thousands within one millisecond', () => {
    const ids = Array.from({ length: 50_000 }, () => newId());
    expect(ids.every((x) => validate(x) && version(x) === 7)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((x, i) => i === 0 || x > ids[i - 1]!)).toBe(true);
    // The variant bits (10xx) are set.
    expect(ids.every((x) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(x))).toBe(true);
  });

  it('carries the current time in its first 48 bits', () => {
    const before = Date.now();
    const id = newId();
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now() + 5);
  });

  it('idAt builds an id of a given millisecond, inside [idFloor(ms), idFloor(ms + 1))', () => {
    for (const iso of ['1970-01-01T00:00:00.000Z', '2026-01-02T03:04:05.678Z', '2099-12-31T23:59:59.999Z']) {
      const at = new Date(iso);
      const id = idAt(at);
      expect(validate(id) && version(id) === 7).toBe(true);
      expect(id >= idFloor(at.getTime())).toBe(true);
      expect(id < idFloor(at.getTime() + 1)).toBe(true);
      expect(validate(idFloor(at.getTime()))).toBe(true);
    }
  });
});
